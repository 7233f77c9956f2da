// The board as an installed app: its service worker, the Screen Wake Lock, and Web Push.
//
// What it did is kept in `window.__natteroPwa` (service worker, wake lock acquisitions and
// errors, push state) so tests and support can see it, as `__natteroCues` does for sound.

import * as api from "./api.js";

const status = {
  serviceWorker: "none",    // none | registered | unsupported | failed
  wakeLock: "none",         // none | held | released | unsupported | refused
  wakeLockAcquired: 0,      // how many times the lock was (re)acquired
  wakeLockError: null,
  push: "none",             // none | subscribed | denied | unsupported | failed
  pushError: null,
};
window.__natteroPwa = status;

let sentinel = null;

export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) {
    status.serviceWorker = "unsupported";
    return null;
  }
  try {
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    status.serviceWorker = "registered";
    return registration;
  } catch (error) {
    status.serviceWorker = "failed";
    console.warn("nattero: the service worker could not be registered", error);
    return null;
  }
}

async function acquireWakeLock() {
  if (!("wakeLock" in navigator)) {
    status.wakeLock = "unsupported";
    return;
  }
  if (document.visibilityState !== "visible" || (sentinel && !sentinel.released)) return;
  try {
    sentinel = await navigator.wakeLock.request("screen");
    status.wakeLock = "held";
    status.wakeLockAcquired += 1;
    status.wakeLockError = null;
    sentinel.addEventListener("release", () => { status.wakeLock = "released"; });
  } catch (error) {
    // Low battery or a policy may refuse it; the board works, the screen may sleep.
    status.wakeLock = "refused";
    status.wakeLockError = String(error && error.message || error);
  }
}

/** Keep the screen on while the board is open; the browser drops the lock whenever the
 * page is hidden, so it is taken again each time the board becomes visible. */
export function keepScreenAwake() {
  acquireWakeLock();
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") acquireWakeLock();
  });
}

/** For support and tests: give the lock back (as the browser does when hidden). */
export async function releaseWakeLock() {
  if (sentinel && !sentinel.released) await sentinel.release();
}
status.releaseWakeLock = releaseWakeLock;

function keyBytes(base64url) {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(base64url.length / 4) * 4, "=");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

export function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

export function notificationsGranted() {
  return "Notification" in window && Notification.permission === "granted";
}

/** Ask for notifications (from a tap) and subscribe this board to Nattero's Web Push. */
export async function subscribePush() {
  if (!pushSupported()) {
    status.push = "unsupported";
    return status.push;
  }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    status.push = "denied";
    return status.push;
  }
  try {
    const registration = await navigator.serviceWorker.ready;
    const { public_key: publicKey } = await api.get("/push/key");
    let subscription = await registration.pushManager.getSubscription();
    if (!subscription) {
      subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: keyBytes(publicKey) });
    }
    await api.post("/push/subscriptions", subscription.toJSON());
    status.push = "subscribed";
  } catch (error) {
    status.push = "failed";
    status.pushError = String(error && error.message || error);
  }
  return status.push;
}
