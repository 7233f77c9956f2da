// The night board: live alerts, floor view, health banner, pre-shift check.
// All state lives in this module; rendering is keyed by alert id so a focused button is
// never thrown away under a keyboard user's hands.

import * as api from "./api.js";
import { AlertStream } from "./stream.js";
import { t, translatePage, bindLanguageToggle, formatAgo, formatClock } from "./i18n.js";
import * as sound from "./sound.js";
import * as pwa from "./pwa.js";
import { renderFloor } from "./floor.js";
import { renderRounds, bindRounds } from "./rounds.js";
import { renderQuestions, sendAnswer } from "./shift.js";
import { renderSiteBanners, renderPreshift, nightJustStarted } from "./health.js";

const params = new URLSearchParams(location.search);
// Polling intervals can be shortened (tests, demos) but not made silly.
const HEALTH_EVERY_MS = Math.max(1000, Number(params.get("health_every") || 10) * 1000);
const FLOOR_EVERY_MS = 30_000;
// Not a word from the server for this long: the board sounds its fault tone, and again
// every FAULT_EVERY_MS while the silence lasts (shortened in tests; the server pings every
// 10 s, so never below 15 s / 10 s).
const FAULT_AFTER_MS = Math.max(15_000, Number(params.get("fault_after") || 30) * 1000);
const FAULT_EVERY_MS = Math.max(10_000, Number(params.get("fault_every") || 60) * 1000);
const PAGE_OPENED_AT = Date.now();
const RECENT_KEEP_MS = 15 * 60_000;
const SEVERITY_RANK = { high: 2, normal: 1, notice: 0 };
const CUE_CHANGES = { raised: "new", escalated: "escalated", reannounced: "escalated" };
// A finger on the list in the last moment: a new alert waits at the end until it has gone,
// so the card under the finger never changes before the tap lands.
const TOUCH_GUARD_MS = 1500;

const state = {
  claims: null,
  sites: [],                 // [{id, name, tz, night_start, night_end}]
  filter: localStorage.getItem("nattero.siteFilter") || "all",
  alerts: new Map(),         // id -> alert (open, acknowledged, or recently resolved)
  resolvedSeenAt: new Map(), // id -> Date.now() when the board learnt it was resolved
  rooms: new Map(),          // site -> rooms
  health: new Map(),         // site -> health answer (null = could not fetch)
  cued: new Set(),           // `${id}:${seq}` cues already played (replays must not repeat)
  firstSnapshot: true,
  resolving: null,           // alert being resolved in the dialog
  order: [],                 // ids of the live list, in the order shown
  faultSoundedAt: null,      // Date.now() of the last fault tone of this silence
  touchedAt: -Infinity,      // performance.now() of the last pointer on the alert list
  sortPending: false,        // a new alert arrived while a finger was on the list
};

const $ = (id) => document.getElementById(id);
const stream = new AlertStream();
window.__natteroBoard = { state, stream }; // for support and tests: read-only by convention

// ---- alerts ------------------------------------------------------------------------------

function visibleSites() {
  return state.filter === "all" ? state.sites : state.sites.filter((s) => s.id === state.filter);
}

function siteOf(id) {
  return state.sites.find((s) => s.id === id);
}

function isVisible(alert) {
  return visibleSites().some((s) => s.id === alert.site);
}

function compareAlerts(a, b) {
  return (a.status === "open" ? 0 : 1) - (b.status === "open" ? 0 : 1) ||
    (SEVERITY_RANK[b.severity] ?? 0) - (SEVERITY_RANK[a.severity] ?? 0) ||
    Number(b.escalated) - Number(a.escalated) ||
    Date.parse(b.raised_at || b.first_ts) - Date.parse(a.raised_at || a.first_ts);
}

// The live list keeps its order while alerts change (an acknowledged card stays where it
// was, so the next tap lands where the nurse expects); it is sorted afresh only when a new
// alert arrives, and then only when no finger has just been on the list.
function stableOrder(live) {
  const byId = new Map(live.map((a) => [a.id, a]));
  const kept = state.order.filter((id) => byId.has(id));
  const arrived = live.filter((a) => !kept.includes(a.id));
  if (arrived.length > 0) state.sortPending = true;
  if (!state.sortPending) return kept.map((id) => byId.get(id));
  const waitMs = TOUCH_GUARD_MS - (performance.now() - state.touchedAt);
  if (waitMs > 0) {
    setTimeout(renderAlerts, waitMs + 50);
    return [...kept.map((id) => byId.get(id)), ...arrived.sort(compareAlerts)];
  }
  state.sortPending = false;
  return [...live].sort(compareAlerts);
}

function applyAlert(alert) {
  const known = state.alerts.get(alert.id);
  if (known && known.seq > alert.seq) return known; // an older snapshot arrived late
  state.alerts.set(alert.id, alert);
  if (alert.status === "resolved" && !state.resolvedSeenAt.has(alert.id)) {
    state.resolvedSeenAt.set(alert.id, Date.now());
  }
  return alert;
}

function ruleText(alert) {
  return t(`rule.${alert.rule}`) === `rule.${alert.rule}` ? alert.rule : t(`rule.${alert.rule}`);
}

function roomText(alert) {
  return alert.room_label || alert.room;
}

// A call to go (alerts.called_at set): sounded and listed under "go now". A quiet situation
// (an outing still within its allowed time, someone up in a common room) is shown in its
// own muted list and never sounded; it sounds the moment it becomes a call.
const DEVICE_RULES = new Set(["sensor_offline", "low_battery"]);

function isCall(alert) {
  return alert.called_at !== null && alert.called_at !== undefined;
}

function maybeCue(change, alert) {
  const kind = CUE_CHANGES[change];
  if (!kind || alert.status !== "open" || alert.severity === "notice" || !isCall(alert)) return;
  const key = `${alert.id}:${alert.seq}`;
  if (state.cued.has(key)) return;
  state.cued.add(key);
  sound.cue(kind, alert);
  $("announcer").textContent = t(kind === "new" ? "announce.new" : "announce.escalated",
    { room: roomText(alert), what: ruleText(alert) });
}

function stateLine(alert) {
  const site = siteOf(alert.site);
  const tz = site && site.tz;
  if (alert.status === "resolved") {
    const outcome = alert.outcome ? ` · ${t(`outcome.${alert.outcome}`)}` : "";
    return `${t("status.resolved", { who: alert.resolved_by || "–" })} ${formatClock(alert.resolved_at, tz)}${outcome}`;
  }
  if (alert.status === "acknowledged") {
    return `${t("status.acknowledged", { who: alert.acknowledged_by || "–" })} ${formatClock(alert.acknowledged_at, tz)}`;
  }
  return t("status.open");
}

// Each step of the escalation to people, as the server logged it: "Sendt til 2. person
// (e-mail) 03:12", or that it could not be sent (never hidden: someone must act).
function fillPassedOn(ul, steps, tz) {
  ul.replaceChildren(...steps.map((step) => {
    const li = document.createElement("li");
    li.className = `passed passed-${step.status}`;
    li.textContent = t(`passed.${step.status}`, {
      who: t(`passed.step.${step.step}`),
      channel: t(`passed.channel.${step.channel}`),
      at: formatClock(step.at, tz),
    });
    if (step.error) li.title = step.error;
    return li;
  }));
  ul.hidden = steps.length === 0;
}

function buildCard(alert) {
  const li = document.createElement("li");
  li.dataset.id = String(alert.id);
  li.innerHTML = `
    <div class="alert-head">
      <span class="badge badge-severity"></span>
      <span class="badge badge-escalated"></span>
      <span class="alert-site"></span>
      <span class="alert-ago"></span>
    </div>
    <p class="alert-room"></p>
    <p class="alert-what"></p>
    <p class="alert-state"></p>
    <ul class="alert-passed"></ul>
    <p class="alert-note"></p>
    <div class="alert-actions">
      <button type="button" class="button button-primary button-large act-ack"></button>
      <button type="button" class="button button-large act-resolve"></button>
    </div>
    <p class="form-error alert-error" role="alert" hidden></p>`;
  li.querySelector(".act-ack").addEventListener("click", () => acknowledge(alert.id, li));
  li.querySelector(".act-resolve").addEventListener("click", () => openResolve(alert.id));
  return li;
}

function fillCard(li, alert, showSite) {
  li.className = `alert sev-${alert.severity} status-${alert.status}${alert.escalated ? " escalated" : ""}`;
  li.dataset.status = alert.status;
  li.dataset.site = alert.site;
  li.dataset.room = alert.room;
  li.dataset.rule = alert.rule;
  const q = (sel) => li.querySelector(sel);
  q(".badge-severity").textContent = t(`severity.${alert.severity}`);
  q(".badge-escalated").textContent = t("status.escalated");
  q(".badge-escalated").hidden = !alert.escalated;
  const site = siteOf(alert.site);
  q(".alert-site").textContent = site ? site.name : alert.site;
  q(".alert-site").hidden = !showSite;
  const ago = q(".alert-ago");
  ago.dataset.ts = alert.raised_at || alert.first_ts;
  ago.textContent = formatAgo(ago.dataset.ts);
  ago.title = formatClock(ago.dataset.ts, site && site.tz);
  q(".alert-room").textContent = roomText(alert);
  const count = alert.count > 1 ? ` · ${t("status.count", { n: alert.count })}` : "";
  const late = alert.late ? ` · ${t("status.late")}` : "";
  q(".alert-what").textContent = `${ruleText(alert)}${count}${late}`;
  q(".alert-state").textContent = stateLine(alert);
  fillPassedOn(q(".alert-passed"), alert.passed_on || [], site && site.tz);
  q(".alert-note").textContent = alert.outcome_note || "";
  q(".alert-note").hidden = !alert.outcome_note;
  const ack = q(".act-ack");
  const resolve = q(".act-resolve");
  ack.textContent = t("action.ack");
  resolve.textContent = t("action.resolve");
  ack.hidden = alert.status !== "open";
  resolve.hidden = alert.status === "resolved";
  q(".alert-actions").hidden = alert.status === "resolved";
  const label = `${roomText(alert)}, ${ruleText(alert)}`;
  ack.setAttribute("aria-label", `${t("action.ack")}: ${label}`);
  resolve.setAttribute("aria-label", `${t("action.resolve")}: ${label}`);
}

function renderList(ul, alerts, showSite) {
  const existing = new Map([...ul.children].map((li) => [li.dataset.id, li]));
  const wanted = alerts.map((alert) => {
    const li = existing.get(String(alert.id)) || buildCard(alert);
    existing.delete(String(alert.id));
    fillCard(li, alert, showSite);
    return li;
  });
  for (const li of existing.values()) li.remove();
  wanted.forEach((li, index) => {
    if (ul.children[index] !== li) ul.insertBefore(li, ul.children[index] || null);
  });
}

function renderAlerts() {
  const now = Date.now();
  for (const [id, at] of state.resolvedSeenAt) {
    if (now - at > RECENT_KEEP_MS) {
      state.resolvedSeenAt.delete(id);
      state.alerts.delete(id);
    }
  }
  const all = [...state.alerts.values()].filter(isVisible);
  const live = stableOrder(all.filter((a) => a.status !== "resolved" && a.severity !== "notice" && isCall(a)));
  state.order = live.map((a) => a.id);
  // Quiet device faults (a dead sensor, a low battery) are the technician's: listed under
  // maintenance, apart from the residents' quiet situations.
  const maintenance = (a) => a.severity === "notice" || (DEVICE_RULES.has(a.rule) && !isCall(a));
  const situations = all.filter((a) => a.status !== "resolved" && !maintenance(a) && !isCall(a))
    .sort(compareAlerts);
  const notices = all.filter((a) => a.status !== "resolved" && maintenance(a)).sort(compareAlerts);
  const recent = all.filter((a) => a.status === "resolved")
    .sort((a, b) => Date.parse(b.resolved_at) - Date.parse(a.resolved_at)).slice(0, 10);
  const showSite = visibleSites().length > 1;
  renderList($("alert-list"), live, showSite);
  renderList($("situation-list"), situations, showSite);
  renderList($("notice-list"), notices, showSite);
  renderList($("recent-list"), recent, showSite);
  $("situations").hidden = situations.length === 0;
  $("notices").hidden = notices.length === 0;
  $("recent").hidden = recent.length === 0;
  $("quiet").hidden = live.length > 0 || stream.state !== "live";
  const open = live.filter((a) => a.status === "open").length;
  $("alert-count").textContent = live.length ? `(${open}/${live.length})` : "";
  document.title = open ? `(${open}) Nattero` : "Nattero";
  document.body.classList.toggle("has-open-alerts", open > 0);
}

async function acknowledge(id, li) {
  const error = li.querySelector(".alert-error");
  error.hidden = true;
  try {
    applyAlert(await api.post(`/alerts/${id}/ack`));
  } catch (e) {
    error.textContent = e.status === 409 ? t("action.conflict") : t("action.failed", { reason: e.message });
    error.hidden = false;
    refreshAlert(id);
  }
  renderAll();
}

async function refreshAlert(id) {
  try {
    applyAlert(await api.get(`/alerts/${id}`));
    renderAll();
  } catch { /* the stream will bring the truth */ }
}

function openResolve(id) {
  const alert = state.alerts.get(id);
  if (!alert) return;
  state.resolving = id;
  $("resolve-alert").textContent = `${roomText(alert)} – ${ruleText(alert)}`;
  $("resolve-error").hidden = true;
  $("resolve-note").value = "";
  // Outcome codes only, unless an admin allowed free-text notes for the site.
  $("resolve-note-field").hidden = !siteOf(alert.site)?.resolve_notes;
  $("resolve-dialog").showModal();
}

async function resolveWith(outcome) {
  const id = state.resolving;
  if (id === null) return;
  const note = $("resolve-note-field").hidden ? "" : $("resolve-note").value.trim();
  const buttons = $("resolve-dialog").querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    applyAlert(await api.post(`/alerts/${id}/resolve`, note ? { outcome, note } : { outcome }));
    $("resolve-dialog").close();
    state.resolving = null;
  } catch (e) {
    // Keep the dialog and the typed note: nothing is lost on a failed submit.
    $("resolve-error").textContent = e.status === 409 ? t("action.conflict") : t("action.failed", { reason: e.message });
    $("resolve-error").hidden = false;
    if (e.status === 409) refreshAlert(id);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
  renderAll();
}

// ---- stream ------------------------------------------------------------------------------

stream.addEventListener("snapshot", (event) => {
  const ids = new Set();
  for (const alert of event.detail.alerts) {
    ids.add(alert.id);
    const wasKnown = state.alerts.has(alert.id);
    applyAlert(alert);
    // After a reconnect that could not replay, anything new and open still deserves a cue.
    if (!state.firstSnapshot && !wasKnown) maybeCue("raised", alert);
    else state.cued.add(`${alert.id}:${alert.seq}`);
  }
  // A snapshot is the whole truth about open alerts: anything else we held is over.
  for (const [id, alert] of state.alerts) {
    if (!ids.has(id) && alert.status !== "resolved") state.alerts.delete(id);
  }
  state.firstSnapshot = false;
  renderAll();
  refreshRooms();
});

stream.addEventListener("change", (event) => {
  const { change, alert } = event.detail;
  applyAlert(alert);
  maybeCue(change, alert);
  renderAll();
  scheduleRoomsRefresh();
});

stream.addEventListener("status", renderHealth);
stream.addEventListener("ping", renderHealth);
stream.addEventListener("hello", () => {
  renderHealth();
  refreshHealth();
});

// ---- sites, rooms, health ----------------------------------------------------------------

let roomsTimer = null;
function scheduleRoomsRefresh() {
  clearTimeout(roomsTimer);
  roomsTimer = setTimeout(refreshRooms, 500);
}

async function refreshRooms() {
  await Promise.all(state.sites.map(async (site) => {
    try {
      state.rooms.set(site.id, await api.get(`/sites/${encodeURIComponent(site.id)}/rooms`));
    } catch (e) {
      console.warn(`nattero board: rooms of ${site.id} unavailable`, e);
    }
  }));
  renderFloorView();
  // The banners of a flat's ending basis come from the rooms: rooms that arrive after the
  // last health render must not wait for the next ping or health poll to show them.
  renderHealth();
}

async function refreshHealth() {
  await Promise.all(state.sites.map(async (site) => {
    try {
      state.health.set(site.id, await api.get(`/sites/${encodeURIComponent(site.id)}/health`));
    } catch (e) {
      // Unreachable server is already the connection banner; anything else is its own warning.
      state.health.set(site.id, e.status === 0 ? state.health.get(site.id) : null);
    }
  }));
  renderHealth();
}

function renderFloorView() {
  const container = $("floor-sites");
  const sites = visibleSites();
  const live = [...state.alerts.values()].filter((a) => a.status !== "resolved");
  const blocks = sites.map((site) => {
    const block = document.createElement("div");
    block.className = "floor-site-block";
    const rooms = state.rooms.get(site.id) || [];
    renderFloor(block, site, rooms, live.filter((a) => a.site === site.id), sites.length > 1);
    renderRounds(block, site, rooms);
    return block;
  });
  container.replaceChildren(...blocks);
}

function renderHealth() {
  const connection = $("health-connection");
  if (stream.state === "down") {
    connection.textContent = t("health.down", { time: formatClock(stream.downSince) });
    connection.hidden = false;
  } else {
    connection.hidden = true;
  }
  document.body.dataset.connection = stream.state;
  const sites = visibleSites();
  const problem = renderSiteBanners($("health-sites"), sites, state.health, state.rooms);
  document.body.classList.toggle("system-degraded", problem || stream.state === "down");
  const ok = $("health-ok");
  const okText = $("health-ok-text");
  ok.hidden = stream.state === "down";
  if (stream.state === "connecting") {
    okText.textContent = t("health.connecting");
    okText.dataset.ts = "";
  } else if (problem) {
    // Never a green "all is well" next to a warning: a silent failure must not look calm.
    okText.textContent = t("health.connected");
    okText.dataset.ts = "";
  } else {
    const latest = sites.map((s) => state.health.get(s.id)?.last_event_at).filter(Boolean).sort().pop();
    okText.dataset.ts = latest || "";
    okText.textContent = latest ? t("health.ok", { ago: formatAgo(latest) }) : t("health.ok.nodata");
  }
  ok.classList.toggle("is-live", stream.state === "live");
  ok.classList.toggle("is-degraded", problem);
  $("quiet").hidden = stream.state !== "live" ||
    [...state.alerts.values()].some((a) => isVisible(a) && a.status !== "resolved" && a.severity !== "notice" &&
      isCall(a));
}

function renderAll() {
  renderAlerts();
  renderFloorView();
  renderHealth();
}

// ---- pre-shift check -----------------------------------------------------------------------

async function openPreshift() {
  await Promise.all([refreshHealth(), refreshRooms()]);
  renderPreshift($("preshift-body"), visibleSites(), state.health, state.rooms);
  if (!$("preshift-dialog").open) $("preshift-dialog").showModal();
}

function checkNightStart() {
  const due = state.sites.map((site) => nightJustStarted(site)).filter((key) => key && !localStorage.getItem(key));
  if (!due.length) return;
  for (const key of due) localStorage.setItem(key, "shown");
  openPreshift();
}

// ---- end-of-shift questionnaire -------------------------------------------------------------

function openShift() {
  const sites = visibleSites();
  const select = $("shift-site");
  select.replaceChildren(...sites.map((site) => new Option(site.name, site.id)));
  select.hidden = $("shift-site-label").hidden = sites.length < 2;
  renderQuestions($("shift-questions"));
  $("shift-status").hidden = true;
  if (!$("shift-dialog").open) $("shift-dialog").showModal();
}

// ---- controls ------------------------------------------------------------------------------

function renderSoundControls() {
  const on = sound.soundEnabled();
  $("sound-step").hidden = on;
  // Chosen before, but the browser waits for a tap: say so plainly, not "turn sound on".
  const waiting = !on && sound.soundChosen();
  $("sound-step").classList.toggle("sound-waiting", waiting);
  $("sound-enable").textContent = t(waiting ? "sound.resume" : "sound.enable");
  $("sound-why").textContent = t(waiting ? "sound.resume.why" : "sound.enable.why");
  renderPushControl();
  const until = sound.mutedUntil();
  const mute = $("mute");
  mute.textContent = until ? t("sound.muted", { time: formatClock(until.toISOString()) }) : t("sound.mute");
  mute.title = until ? `${t("sound.unmute")}. ${t("sound.muted.note")}` : t("sound.muted.note");
  mute.setAttribute("aria-pressed", until ? "true" : "false");
  document.body.classList.toggle("is-muted", Boolean(until));
}

function renderHandoverLink() {
  const site = state.filter !== "all" ? state.filter : state.sites[0]?.id;
  $("handover-link").href = site ? `/handover.html?site=${encodeURIComponent(site)}` : "/handover.html";
}

function renderSiteFilter() {
  renderHandoverLink();
  const select = $("site-filter");
  const options = [["all", t("board.site.all")], ...state.sites.map((s) => [s.id, s.name])];
  select.replaceChildren(...options.map(([value, text]) => new Option(text, value, false, value === state.filter)));
  select.hidden = state.sites.length < 2;
}

function checkServerSilence(now) {
  const heardAt = stream.lastMessageAt ?? PAGE_OPENED_AT;
  if (stream.state === "live" && now - heardAt < FAULT_AFTER_MS) {
    state.faultSoundedAt = null;
    return;
  }
  if (now - heardAt < FAULT_AFTER_MS) return;
  if (state.faultSoundedAt === null || now - state.faultSoundedAt >= FAULT_EVERY_MS) {
    state.faultSoundedAt = now;
    sound.faultCue(new Date(heardAt).toISOString());
  }
}

function tick() {
  const now = Date.now();
  checkServerSilence(now);
  for (const el of document.querySelectorAll(".alert-ago[data-ts], .tile-ago[data-ts]")) {
    el.textContent = formatAgo(el.dataset.ts, now);
  }
  const okText = $("health-ok-text");
  if (okText.dataset.ts) okText.textContent = t("health.ok", { ago: formatAgo(okText.dataset.ts, now) });
  renderSoundControls(); // the mute expires on its own
}

function renderPushControl() {
  const button = $("push-enable");
  const pushState = window.__natteroPwa.push;
  button.hidden = !pwa.pushSupported() || pushState === "subscribed" || pushState === "unsupported";
  $("push-state").textContent = pushState === "denied" ? t("push.denied")
    : pushState === "failed" ? t("push.failed") : "";
  $("push-state").hidden = !$("push-state").textContent;
}

async function loadSites() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await api.get("/sites");
    } catch (e) {
      if (e.status !== 0 && e.status < 500) {
        console.error("nattero board: cannot load sites", e);
        return [];
      }
      // Server not reachable yet: say so, and keep trying.
      stream.state = "down";
      stream.downSince = stream.downSince || new Date().toISOString();
      renderHealth();
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 1000 * (attempt + 1))));
    }
  }
}

async function main() {
  translatePage();
  state.claims = api.tokenClaims();
  if (!state.claims && api.enrolledBoard()) {
    // An enrolled board woken after its token ran out: renew, never a login page.
    await api.renewBoardToken().catch(() => false);
    state.claims = api.tokenClaims();
  }
  if (!state.claims) {
    api.goToLogin(); // an enrolled board that cannot renew yet: the login page keeps trying
    return;
  }
  if (state.claims.role === "evaluator") {
    // Evaluators see no live data: their page is the evaluator page (the server refuses
    // them the alerts and the stream in any case).
    location.replace("/evaluator.html?reason=board");
    return;
  }
  api.startRenewal();
  $("admin-link").hidden = state.claims.role !== "admin";
  bindLanguageToggle($("lang"));
  document.addEventListener("nattero:language", () => {
    renderSiteFilter();
    renderSoundControls();
    renderAll();
  });
  $("logout").addEventListener("click", () => {
    stream.stop();
    api.forgetBoard(); // logging out of an enrolled board ends its enrolment on this tablet
    api.goToLogin();
  });
  $("sound-enable").addEventListener("click", async () => {
    await sound.enableSound();
    renderSoundControls();
  });
  // A remembered choice starts with the first tap anywhere on the board, not only on the
  // button (the browser needs a tap; which one does not matter).
  const startRememberedSound = async () => {
    if (!sound.soundChosen() || sound.soundEnabled()) return;
    await sound.enableSound();
    renderSoundControls();
  };
  for (const kind of ["pointerdown", "keydown"]) {
    document.addEventListener(kind, startRememberedSound, { capture: true });
  }
  sound.resumeRemembered().then(renderSoundControls);
  $("push-enable").addEventListener("click", async () => {
    await pwa.subscribePush();
    renderPushControl();
  });
  pwa.registerServiceWorker().then(async () => {
    // Already allowed on this device: keep the server's copy of the subscription current.
    if (pwa.notificationsGranted()) await pwa.subscribePush();
    renderPushControl();
  });
  pwa.keepScreenAwake();
  $("mute").addEventListener("click", () => {
    if (sound.mutedUntil()) sound.unmute(); else sound.mute();
    renderSoundControls();
  });
  $("preshift-open").addEventListener("click", openPreshift);
  $("shift-open").addEventListener("click", openShift);
  $("shift-send").addEventListener("click", () =>
    sendAnswer($("shift-site").value, $("shift-form"), $("shift-status")));
  $("shift-form").addEventListener("input", () => { $("shift-status").hidden = true; });
  bindRounds($("floor-sites"), $("rounds-status"));
  for (const button of document.querySelectorAll("[data-outcome]")) {
    button.addEventListener("click", () => resolveWith(button.dataset.outcome));
  }
  $("resolve-dialog").addEventListener("close", () => { state.resolving = null; });
  for (const kind of ["pointerdown", "pointermove", "touchstart"]) {
    $("alert-list").addEventListener(kind, () => { state.touchedAt = performance.now(); },
      { passive: true });
  }
  $("site-filter").addEventListener("change", (event) => {
    state.filter = event.target.value;
    localStorage.setItem("nattero.siteFilter", state.filter);
    renderHandoverLink();
    renderAll();
  });
  renderSoundControls();
  renderHealth();

  state.sites = await loadSites();
  if (state.filter !== "all" && !state.sites.some((s) => s.id === state.filter)) state.filter = "all";
  renderSiteFilter();
  if (!state.sites.length) {
    $("quiet").hidden = false;
    $("quiet").querySelector(".quiet-detail").textContent = t("board.no_sites");
  }
  stream.start();
  refreshRooms();
  refreshHealth();
  setInterval(tick, 1000);
  setInterval(refreshHealth, HEALTH_EVERY_MS);
  setInterval(refreshRooms, FLOOR_EVERY_MS);
  setInterval(checkNightStart, 30_000);
  checkNightStart();
}

main();
