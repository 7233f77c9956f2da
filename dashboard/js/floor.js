// The floor view: every room of a site as a tile with one state a glance can read.
// State is shown as words and a shape as well as a colour (never colour alone).

import { t, formatAgo } from "./i18n.js";

export const LOW_BATTERY = 15;
const ACTIVITY_WINDOW_MS = 5 * 60_000;
const RESIDENT_RULES = new Set(["left_flat", "bed_exit_not_back", "common_motion", "building_exit"]);
const API_STATES = new Set(["quiet", "out", "activity", "alert", "offline", "low_battery",
  "not_monitored", "no_sensor"]);

/**
 * The state of one room, worst first. `alerts` are the board's live (not resolved) alerts of
 * the room's site. If the server sends `room.state` (the rules engine knows excursions
 * best) it wins.
 */
export function roomState(room, alerts, now = Date.now()) {
  if (room.state && API_STATES.has(room.state)) return room.state;
  const mine = alerts.filter((a) => a.room === room.id && a.status !== "resolved");
  const devices = (room.devices || []).filter((d) => !d.revoked_at);
  if (room.kind === "flat" && room.monitored === false) return "not_monitored";
  // Only a call makes the room red; a quiet situation (an outing within its time) is "out".
  if (mine.some((a) => RESIDENT_RULES.has(a.rule) && a.status === "open" && a.called_at !== null)) {
    return "alert";
  }
  if (mine.some((a) => a.rule === "sensor_offline") || devices.some((d) => d.presence === "offline")) {
    return "offline";
  }
  if (mine.some((a) => a.rule === "left_flat" || a.rule === "bed_exit_not_back")) return "out";
  if (devices.length === 0) return "no_sensor";
  if (devices.some((d) => typeof d.battery === "number" && d.battery < LOW_BATTERY)) {
    return "low_battery";
  }
  if (devices.some((d) => d.last_event_at && now - Date.parse(d.last_event_at) < ACTIVITY_WINDOW_MS)) {
    return "activity";
  }
  return "quiet";
}

function lastEvent(room) {
  let latest = null;
  for (const device of room.devices || []) {
    if (device.last_event_at && (!latest || device.last_event_at > latest)) latest = device.last_event_at;
  }
  return latest;
}

const KIND_ORDER = { exit: 0, common: 1, flat: 2 };

/** Render (replace) the tiles of one site into `container`. */
export function renderFloor(container, site, rooms, alerts, showSiteName) {
  container.replaceChildren();
  const heading = document.createElement("h3");
  heading.className = "floor-site";
  heading.textContent = site.name;
  heading.hidden = !showSiteName;
  container.append(heading);

  const grid = document.createElement("ul");
  grid.className = "tiles";
  grid.dataset.site = site.id;
  const sorted = [...rooms].sort((a, b) =>
    (KIND_ORDER[a.kind] ?? 9) - (KIND_ORDER[b.kind] ?? 9) ||
    String(a.label).localeCompare(String(b.label), undefined, { numeric: true }));
  for (const room of sorted) {
    const state = roomState(room, alerts);
    const tile = document.createElement("li");
    tile.className = `tile tile-${room.kind} state-${state}`;
    tile.dataset.room = room.id;
    tile.dataset.state = state;

    const label = document.createElement("span");
    label.className = "tile-label";
    label.textContent = room.label;
    const kind = document.createElement("span");
    kind.className = "tile-kind";
    kind.textContent = t(`floor.${room.kind}`);
    const status = document.createElement("span");
    status.className = "tile-state";
    const marker = document.createElement("span");
    marker.className = "marker";
    marker.setAttribute("aria-hidden", "true");
    status.append(marker, document.createTextNode(t(`state.${state}`)));
    tile.append(label, kind, status);

    const seen = lastEvent(room);
    if (seen && state !== "not_monitored") {
      const ago = document.createElement("span");
      ago.className = "tile-ago";
      ago.dataset.ts = seen;
      ago.textContent = formatAgo(seen);
      tile.append(ago);
    }
    grid.append(tile);
  }
  container.append(grid);
}
