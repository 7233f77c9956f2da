// System health as the night staff must see it: a silent failure must never look like a
// quiet night. Three things are checked: the board's own connection, whether each site
// still sends data, and which sensors are offline, silent or low on battery (and, in the
// pre-shift check, whose clock is off).
// Also the pre-shift check: the same facts as a list, when the night window starts.

import { t, formatAgo, formatClock, locale } from "./i18n.js";

const CLOCK_WARN_S = 60;
const CLOCK_REPLAY_S = 86400;
// The board warns of a flat's monitoring basis two weeks before it ends (issue 17 §6); the
// admin page's banner a month before (ingest.basis_expiry.WARNING_DAYS), to renew it in time.
export const BASIS_BANNER_DAYS = 14;

/** Days from the site's today to `day` (YYYY-MM-DD): 0 today, negative when past. */
function daysUntil(day, timeZone) {
  const today = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit",
    day: "2-digit" }).format(new Date());
  return Math.round((Date.parse(`${day}T00:00:00Z`) - Date.parse(`${today}T00:00:00Z`)) / 86400000);
}

/** A site's flats whose basis has ended (not monitored) and those ending within the
 * banner's days. */
function endingBases(site, rooms) {
  const flats = (rooms || []).filter((r) => r.kind === "flat" && r.basis_ends);
  return {
    expired: flats.filter((r) => r.monitored === false),
    ending: flats.filter((r) => r.monitored !== false
      && daysUntil(r.basis_ends, site.tz) <= BASIS_BANNER_DAYS),
  };
}

/** A date (YYYY-MM-DD) in words of the language: "20. december 2026". */
function longDate(day) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "long", timeZone: "UTC" })
    .format(new Date(`${day}T00:00:00Z`));
}

function list(value) {
  return Array.isArray(value) ? value : [];
}

/** Normalise the server's health answer into what the banner and pre-shift check need. */
export function readHealth(health, rooms) {
  const labels = new Map((rooms || []).map((room) => [room.id, room.label]));
  const label = (problem) => labels.get(problem.room) || problem.room || problem.device;
  const lastEvent = health.last_event_at ?? null;
  const offline = list(health.offline);
  const offlineIds = new Set(offline.map((d) => d.device));
  // A device is silent after 2x its heartbeat (the server decides); the site has gone
  // silent when every one of its devices has. Offline ones are listed once, as offline.
  const silentAll = list(health.silent);
  const silentDevices = silentAll.filter((d) => !offlineIds.has(d.device));
  const silent = typeof health.no_data === "boolean" ? health.no_data
    : health.devices > 0 && new Set([...silentAll, ...offline].map((d) => d.device)).size >= health.devices;
  const lowBattery = list(health.low_battery);
  // A device clock off by a minute or more (half the gateway's default skew): set it before
  // its events are refused as stamped in the future. Offsets of a day or more are replayed
  // or simulated nights, not a clock to set.
  const clocks = list(health.clocks).filter((c) => typeof c.offset_s === "number"
    && Math.abs(c.offset_s) >= CLOCK_WARN_S && Math.abs(c.offset_s) < CLOCK_REPLAY_S);
  // No board of the site connected at night for too long (the server's watch, api/push.py).
  const noBoardSince = health.no_board_since ?? null;
  // A door open for hours or a bed empty since yesterday: a lost message or a sensor out
  // of place. The rules do not rely on it; the staff should look at it.
  const stuck = list(health.stuck);
  return { lastEvent, silent, offline, silentDevices, lowBattery, clocks, stuck, label,
    noBoardSince };
}

function roomsText(devices, label) {
  return [...new Set(devices.map(label))].join(", ");
}

/** Replace the per-site banners. Returns whether any site has a problem. */
export function renderSiteBanners(container, sites, healthBySite, roomsBySite) {
  container.replaceChildren();
  let problem = false;
  for (const site of sites) {
    const raw = healthBySite.get(site.id);
    const add = (cls, text, kind) => {
      const p = document.createElement("p");
      p.className = `banner ${cls}`;
      p.dataset.site = site.id;
      p.dataset.kind = kind;
      p.textContent = text;
      container.append(p);
      problem = true;
    };
    const bases = endingBases(site, roomsBySite.get(site.id));
    if (bases.expired.length) {
      add("banner-warn", t("basis.board.expired", { n: bases.expired.length, site: site.name,
        rooms: bases.expired.map((r) => r.label).join(", ") }), "basis-expired");
    }
    if (bases.ending.length) {
      add("banner-info", t("basis.board.ending", { n: bases.ending.length, site: site.name,
        days: BASIS_BANNER_DAYS, rooms: bases.ending.map((r) => r.label).join(", ") }),
      "basis-ending");
    }
    if (raw === undefined) continue; // not fetched yet
    if (raw === null) {
      add("banner-warn", t("health.unknown", { site: site.name }), "unknown");
      continue;
    }
    const h = readHealth(raw, roomsBySite.get(site.id));
    if (h.noBoardSince) {
      add("banner-warn", t("health.noboard", { site: site.name,
        time: formatClock(h.noBoardSince, site.tz) }), "no-board");
    }
    if (h.silent) {
      const text = h.lastEvent
        ? t("health.silent", { site: site.name, time: formatClock(h.lastEvent, site.tz),
          ago: formatAgo(h.lastEvent) })
        : t("health.silent.never", { site: site.name });
      add("banner-silent", text, "no-data");
    }
    const down = [...h.offline, ...h.silentDevices];
    if (down.length) {
      add("banner-warn", t("health.offline", { n: down.length, site: site.name,
        rooms: roomsText(down, h.label) }), "offline");
    }
    if (h.lowBattery.length) {
      add("banner-info", t("health.lowbattery", { n: h.lowBattery.length, site: site.name,
        rooms: roomsText(h.lowBattery, h.label) }), "low-battery");
    }
  }
  return problem;
}

/** The pre-shift list: every room that is not covered tonight, per site. */
export function renderPreshift(container, sites, healthBySite, roomsBySite) {
  container.replaceChildren();
  let anything = false;
  for (const site of sites) {
    const rooms = roomsBySite.get(site.id) || [];
    const raw = healthBySite.get(site.id);
    const rows = [];
    if (raw) {
      const h = readHealth(raw, rooms);
      for (const d of h.offline) rows.push([h.label(d), d.device, t("preshift.offline"), "offline"]);
      for (const d of h.silentDevices) {
        rows.push([h.label(d), d.device, t("preshift.silent", { time: d.last_event_at
          ? formatClock(d.last_event_at, site.tz) : t("ago.never") }), "silent"]);
      }
      for (const d of h.lowBattery) {
        rows.push([h.label(d), d.device, t("preshift.low_battery", { n: d.battery ?? "?" }), "low-battery"]);
      }
      for (const d of h.stuck) {
        rows.push([h.label(d), d.device, t(d.state === "bed_empty" ? "preshift.bed_empty" : "preshift.door_open",
          { time: formatClock(d.since, site.tz), ago: formatAgo(d.since) }), "stuck"]);
      }
      for (const c of h.clocks) {
        rows.push([h.label(c), c.device, t(c.offset_s > 0 ? "preshift.clock_fast" : "preshift.clock_slow",
          { n: Math.round(Math.abs(c.offset_s)) }), "clock"]);
      }
    } else if (raw === null) {
      rows.push(["–", "", t("health.unknown", { site: site.name }), "unknown"]);
    }
    for (const room of rooms) {
      if (room.kind !== "flat") continue;
      if (room.monitored === false) {
        rows.push([room.label, "", room.basis_ends
          ? t("preshift.basis_expired", { date: longDate(room.basis_ends) })
          : t("preshift.not_monitored"), "not-monitored"]);
      } else if (room.basis_ends) {
        // Still covered tonight, but the basis ends soon: renew it before the flat drops out.
        rows.push([room.label, "", t("preshift.basis_ending", { date: longDate(room.basis_ends) }),
          "basis-ending"]);
      }
    }
    const heading = document.createElement("h3");
    heading.textContent = site.name;
    container.append(heading);
    if (!rows.length) {
      const ok = document.createElement("p");
      ok.className = "preshift-ok";
      ok.textContent = t("preshift.all_ok");
      container.append(ok);
      continue;
    }
    anything = true;
    const intro = document.createElement("p");
    intro.textContent = t("preshift.intro");
    const ul = document.createElement("ul");
    ul.className = "preshift-list";
    for (const [room, device, what, kind] of rows) {
      const li = document.createElement("li");
      li.dataset.kind = kind;
      const strong = document.createElement("strong");
      strong.textContent = room;
      li.append(strong, document.createTextNode(` ${device ? `(${device}) ` : ""}– ${what}`));
      ul.append(li);
    }
    container.append(intro, ul);
  }
  const stamp = document.createElement("p");
  stamp.className = "muted";
  stamp.textContent = t("preshift.checked", { time: formatClock(new Date().toISOString()) });
  container.append(stamp);
  return anything;
}

/** Local wall-clock minutes since midnight in a time zone. */
function localMinutes(timeZone, now = new Date()) {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit",
    hourCycle: "h23" }).formatToParts(now);
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return get("hour") * 60 + get("minute");
}

function localDate(timeZone, now = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone }).format(now);
}

function minutesOf(hhmm) {
  const [h, m] = String(hhmm || "22:00").split(":").map(Number);
  return h * 60 + (m || 0);
}

/**
 * The key of tonight's pre-shift check if `site`'s night window began less than
 * `withinMinutes` ago, else null. The key names the local date the night started on.
 */
export function nightJustStarted(site, withinMinutes = 60, now = new Date()) {
  const tz = site.tz || "Europe/Copenhagen";
  const since = (localMinutes(tz, now) - minutesOf(site.night_start) + 1440) % 1440;
  if (since >= withinMinutes) return null;
  const started = new Date(now.getTime() - since * 60_000);
  return `nattero.preshift.${site.id}.${localDate(tz, started)}`;
}
