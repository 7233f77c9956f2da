// Sound and vibration cues for new and escalated alerts.
//
// Browsers play audio only after a tap, so the board shows an "enable sound" step until
// the AudioContext is running. Every cue is recorded in `window.__natteroCues` (whether it
// was audible or not) so tests and support can see exactly what the board tried to do.
// A mute always expires; escalated alerts sound even while muted.

const MUTE_KEY = "nattero.muteUntil";
// The nurse's choice to hear the board, kept across reloads. A browser still starts audio
// only after a tap on the page, so a remembered choice waits for the first tap anywhere.
const SOUND_KEY = "nattero.sound";
export const MUTE_MINUTES = 15;

window.__natteroCues = window.__natteroCues || [];

let context = null;

export function soundEnabled() {
  return context !== null && context.state === "running";
}

/** Whether this board's nurse chose sound (on this device, in an earlier visit or now). */
export function soundChosen() {
  return localStorage.getItem(SOUND_KEY) === "on";
}

/**
 * Try to start sound without a tap, for a remembered choice. Resolves to whether it runs;
 * when the browser still waits for a tap it stays suspended (and `enableSound` from the
 * next tap starts it). Never beeps: nobody asked for a sound just now.
 */
export async function resumeRemembered() {
  if (!soundChosen()) return false;
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return false;
  if (context === null) context = new Context();
  if (context.state !== "running") {
    // Chromium leaves a context made without a tap suspended and resume() pending until a
    // tap; do not wait on it.
    context.resume().catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return soundEnabled();
}

/** Must be called from a tap/click handler. Resolves to whether sound now works. */
export async function enableSound() {
  localStorage.setItem(SOUND_KEY, "on");
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return false;
  if (context === null) context = new Context();
  try {
    await context.resume();
  } catch (error) {
    console.warn("nattero sound: the browser refused audio", error);
  }
  if (soundEnabled()) beep(660, 0.08, 0.05); // a short confirmation the speaker works
  return soundEnabled();
}

export function mutedUntil() {
  const until = Number(localStorage.getItem(MUTE_KEY) || 0);
  if (until && until <= Date.now()) {
    localStorage.removeItem(MUTE_KEY);
    return null;
  }
  return until ? new Date(until) : null;
}

export function mute(minutes = MUTE_MINUTES) {
  localStorage.setItem(MUTE_KEY, String(Date.now() + minutes * 60_000));
}

export function unmute() {
  localStorage.removeItem(MUTE_KEY);
}

function beep(frequency, seconds, at = 0, volume = 0.25) {
  const start = context.currentTime + at;
  const oscillator = context.createOscillator();
  const gain = context.createGain();
  oscillator.type = "sine";
  oscillator.frequency.value = frequency;
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(volume, start + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + seconds);
  oscillator.connect(gain).connect(context.destination);
  oscillator.start(start);
  oscillator.stop(start + seconds + 0.05);
}

const PATTERNS = {
  // Two rising tones: noticeable but not a fire alarm at 3 a.m.
  new: { tones: [[660, 0.18, 0], [880, 0.25, 0.22]], vibrate: [200, 100, 200] },
  // Three insistent tones, repeated: something has waited too long.
  escalated: { tones: [[880, 0.15, 0], [880, 0.15, 0.2], [1175, 0.3, 0.4]],
               vibrate: [300, 100, 300, 100, 300] },
};

// The board's own fault: low, falling tones, unlike any alert's, so a nurse across the room
// knows the board itself has gone deaf (DIN VDE 0834: a fault of the call system is
// signalled to staff). It sounds even while alerts are muted: a mute is for alerts.
const FAULT = { tones: [[440, 0.35, 0], [330, 0.35, 0.45], [247, 0.6, 0.9]],
                vibrate: [600, 200, 600] };

/** Sound the fault tone (the server has not been heard for a while) and record it. */
export function faultCue(silentSince) {
  const audible = soundEnabled();
  if (audible) {
    for (const [frequency, seconds, at] of FAULT.tones) beep(frequency, seconds, at, 0.3);
  }
  let vibrated = false;
  if (typeof navigator.vibrate === "function") {
    try { vibrated = navigator.vibrate(FAULT.vibrate); } catch { vibrated = false; }
  }
  const record = { kind: "fault", alert: null, site: null, room: null, rule: null,
                   severity: null, silent_since: silentSince, at: new Date().toISOString(),
                   audible, muted: false, vibrated };
  window.__natteroCues.push(record);
  document.dispatchEvent(new CustomEvent("nattero:cue", { detail: record }));
  return record;
}

/**
 * Play the cue for an alert and record it. `kind` is "new" or "escalated".
 * Returns the recorded cue.
 */
export function cue(kind, alert) {
  const muted = mutedUntil() !== null && kind !== "escalated";
  const pattern = PATTERNS[kind] || PATTERNS.new;
  const audible = soundEnabled() && !muted;
  if (audible) {
    for (const [frequency, seconds, at] of pattern.tones) beep(frequency, seconds, at);
  }
  let vibrated = false;
  if (!muted && typeof navigator.vibrate === "function") {
    try {
      vibrated = navigator.vibrate(pattern.vibrate);
    } catch {
      vibrated = false;
    }
  }
  const record = {
    kind,
    alert: alert.id,
    site: alert.site,
    room: alert.room,
    rule: alert.rule,
    severity: alert.severity,
    at: new Date().toISOString(),
    audible,
    muted,
    vibrated,
  };
  window.__natteroCues.push(record);
  document.dispatchEvent(new CustomEvent("nattero:cue", { detail: record }));
  return record;
}
