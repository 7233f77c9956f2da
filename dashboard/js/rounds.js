// "Runde gået": staff log a round with one tap, for the whole site, a floor (the flats on
// one corridor) or one flat. The benefit report counts them: measured rounds before the
// sensors (the baseline) against the rounds still walked in the pilot.

import * as api from "./api.js";
import { t, formatClock } from "./i18n.js";

/** The floors of a site: each corridor that flats open onto, with the corridor's label. */
export function floorsOf(rooms) {
  const labels = new Map(rooms.map((room) => [room.id, room.label]));
  const floors = new Map();
  for (const room of rooms) {
    if (room.kind === "flat" && room.corridor) floors.set(room.corridor, labels.get(room.corridor) || room.corridor);
  }
  return [...floors].map(([id, label]) => ({ id, label }))
    .sort((a, b) => String(a.label).localeCompare(String(b.label), undefined, { numeric: true }));
}

function roundButton(text, site, scope, room, ariaLabel) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button button-round";
  button.textContent = text;
  if (ariaLabel) button.setAttribute("aria-label", ariaLabel);
  button.dataset.roundSite = site.id;
  button.dataset.roundScope = scope;
  if (room) button.dataset.roundRoom = room;
  return button;
}

/** The site's round buttons (whole site and each floor) before its tiles, and a small
 * button on each flat tile of `block` (already rendered by `renderFloor`). */
export function renderRounds(block, site, rooms) {
  const bar = document.createElement("div");
  bar.className = "rounds-bar";
  // Staff going round the common rooms: their motion there is not someone nobody knows
  // (rules.staff), for STAFF_ROUND_MINUTES.
  const going = document.createElement("button");
  going.type = "button";
  going.className = "button button-round";
  going.textContent = t("staff.going", { n: STAFF_ROUND_MINUTES });
  going.dataset.staffSite = site.id;
  bar.append(going);
  bar.append(roundButton(t("rounds.site"), site, "site", null));
  for (const floor of floorsOf(rooms)) {
    bar.append(roundButton(t("rounds.floor", { label: floor.label }), site, "floor", floor.id));
  }
  const grid = block.querySelector(".tiles");
  block.insertBefore(bar, grid);
  const labels = new Map(rooms.map((room) => [room.id, room.label]));
  for (const tile of block.querySelectorAll(".tile-flat")) {
    const room = tile.dataset.room;
    tile.append(roundButton(t("rounds.flat"), site, "flat", room,
      t("rounds.flat.label", { label: labels.get(room) || room })));
    // Staff going into the flat: the door they open is not its resident leaving or coming
    // home (rules.staff), for STAFF_ROUND_MINUTES.
    const into = document.createElement("button");
    into.type = "button";
    into.className = "button button-round";
    into.textContent = t("staff.into");
    into.setAttribute("aria-label", t("staff.into.label", { label: labels.get(room) || room,
      n: STAFF_ROUND_MINUTES }));
    into.dataset.staffSite = site.id;
    into.dataset.staffRoom = room;
    into.dataset.staffLabel = labels.get(room) || room;
    tile.append(into);
  }
}

const STAFF_ROUND_MINUTES = 15;

async function announceRound(button, status) {
  button.disabled = true;
  try {
    const room = button.dataset.staffRoom;
    const round = await api.post(`/sites/${encodeURIComponent(button.dataset.staffSite)}/staff-presence`,
      room ? { room, minutes: STAFF_ROUND_MINUTES } : { minutes: STAFF_ROUND_MINUTES });
    status.textContent = room
      ? t("staff.into.done", { label: button.dataset.staffLabel, time: formatClock(round.ends_at) })
      : t("staff.going.done", { time: formatClock(round.ends_at) });
    status.classList.remove("form-error");
  } catch (e) {
    status.textContent = t("rounds.failed") + (e.message ? ` ${e.message}` : "");
    status.classList.add("form-error");
  } finally {
    button.disabled = false;
    status.hidden = false;
  }
}

/** One click handler for every round button of `container` (the buttons are redrawn). */
export function bindRounds(container, status) {
  container.addEventListener("click", async (event) => {
    const going = event.target.closest("[data-staff-site]");
    if (going && !going.disabled) {
      await announceRound(going, status);
      return;
    }
    const button = event.target.closest("[data-round-scope]");
    if (!button || button.disabled) return;
    button.disabled = true;
    const { roundSite, roundScope, roundRoom } = button.dataset;
    try {
      const round = await api.post(`/sites/${encodeURIComponent(roundSite)}/rounds`,
        roundRoom ? { scope: roundScope, room: roundRoom } : { scope: roundScope });
      status.textContent = t("rounds.done", { time: formatClock(round.walked_at), n: round.flats });
      status.classList.remove("form-error");
    } catch (e) {
      status.textContent = t("rounds.failed") + (e.message ? ` ${e.message}` : "");
      status.classList.add("form-error");
    } finally {
      button.disabled = false;
      status.hidden = false;
    }
  });
}
