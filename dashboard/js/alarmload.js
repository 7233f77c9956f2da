// The alarm-load page (admins): which rooms and rules made the noise in the last 30 nights,
// what staff found, the rule changes on the time axis, and "try a change" on those nights
// (the back-test) before applying it. Figures come from GET /sites/{site}/alarm-load; the
// plots are SVG drawn by the server and shown as images (no plotting code runs here).

import * as api from "./api.js";
import { cell, fillTable } from "./tables.js";
import { showTryResult } from "./trychange.js";
import { t, language, locale } from "./i18n.js";
import { describeError as describe, startPage } from "./page.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { sites: [], site: null, load: null, tried: null, plots: [] };

const describeError = (error) => describe(error, t("load.forbidden"));

const number = (value, digits = 1) => (value ?? null) === null ? "–"
  : Number(value).toLocaleString(locale(), { maximumFractionDigits: digits });
const percent = (share) => (share ?? null) === null ? "–"
  : share.toLocaleString(locale(), { style: "percent", maximumFractionDigits: 1 });

function header(text) {
  const th = document.createElement("th");
  th.scope = "row";
  th.textContent = text;
  return th;
}

function row(...cells) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  return tr;
}

function nightName(iso) {
  return new Intl.DateTimeFormat(locale(), { day: "numeric", month: "short", timeZone: "UTC" })
    .format(new Date(`${iso}T12:00:00Z`));
}

function moment(iso) {
  const tz = state.sites.find((s) => s.id === state.site)?.tz;
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short",
    ...(tz ? { timeZone: tz } : {}) }).format(new Date(iso));
}

function roomName(room) {
  return room.label && room.label !== room.room ? `${room.label} (${room.room})` : room.room;
}

function limits(room) {
  return Object.entries(room.limits).map(([rule, s]) => s.enabled
    ? t("load.limit", { rule: t(`rule.${rule}`), minutes: s.minutes ?? "–" })
    : t("load.limit.off", { rule: t(`rule.${rule}`) })).join("; ");
}

function changeText(c) {
  const parts = [];
  if (c.minutes !== null && c.minutes !== undefined) parts.push(t("load.change.minutes", { minutes: c.minutes }));
  if (c.enabled === true) parts.push(t("rules.enabled"));
  if (c.enabled === false) parts.push(t("load.change.off"));
  if (c.severity) parts.push(t(`severity.${c.severity}`));
  const where = c.room ? t("load.change.room", { room: c.room }) : t("load.change.site");
  return `${t(`rule.${c.rule}`)}, ${where}: ${parts.join(", ") || "–"}`;
}

// ---- the figures ---------------------------------------------------------------------------

async function showPlots(query) {
  for (const url of state.plots) URL.revokeObjectURL(url);
  state.plots = [];
  await Promise.all([...document.querySelectorAll("img[data-plot]")].map(async (img) => {
    const response = await api.fetchDocument(
      `/sites/${encodeURIComponent(state.site)}/alarm-load/plots/${img.dataset.plot}.svg?${query}`,
      "image/svg+xml");
    const url = URL.createObjectURL(await response.blob());
    state.plots.push(url);
    img.src = url;
  }));
}

function render(load) {
  $("load-summary").textContent = t("load.summary", { nights: load.nights, alerts: load.alerts,
    calls: load.calls, perNight: number(load.alerts_per_night), from: nightName(load.from),
    to: nightName(load.to) });
  $("plot-per-night").alt = t("load.plot.per_night.alt", { nights: load.nights,
    alerts: load.alerts, changes: load.changes.length });
  $("plot-by-hour").alt = t("load.plot.by_hour.alt");
  $("plot-outcomes").alt = t("load.plot.outcomes.alt");
  fillTable($("load-rules"), load.by_rule.map((r) => row(header(t(`rule.${r.rule}`)),
    cell(number(r.alerts), "num"), cell(number(r.calls), "num"), cell(number(r.per_night, 2), "num"))), 4);
  fillTable($("load-outcomes"), load.outcomes.map((o) => row(
    header(o.outcome === "unresolved" ? t("load.unresolved") : t(`outcome.${o.outcome}`)),
    cell(number(o.alerts), "num"), cell(percent(o.share), "num"))), 3);
  fillTable($("load-noisiest"), load.noisiest.map((r) => {
    const tr = row(header(roomName(r)), cell(number(r.alerts), "num"), cell(number(r.calls), "num"),
      cell(number(r.per_night, 2), "num"), cell(limits(r) || "–"),
      cell(r.routine ? r.routine.explanation.join(" ")
        : r.kind === "flat" ? t("load.routine.none") : "–"));
    tr.dataset.room = r.room;
    return tr;
  }), 6);
  fillTable($("load-changes"), load.changes.map((c, i) => row(cell(String(i + 1)), cell(moment(c.at)),
    cell(changeText(c)), cell(c.actor), cell(c.reason || "–"),
    cell(`${number(c.before_per_night)} → ${number(c.after_per_night)}`))), 6);
}

async function loadRooms() {
  const rooms = await api.get(`/sites/${encodeURIComponent(state.site)}/rooms`);
  $("try-room").replaceChildren(new Option(t("load.try.site"), ""),
    ...rooms.map((r) => new Option(r.label ? `${r.label} (${r.id})` : r.id, r.id)));
}

async function show(event) {
  if (event) event.preventDefault();
  state.site = $("load-site").value;
  if (!state.site) return;
  $("load-error").hidden = true;
  const query = new URLSearchParams({ lang: language() });
  if ($("load-to").value) query.set("to", $("load-to").value);
  const button = $("load-show");
  button.disabled = true;
  $("load-status").textContent = t("load.busy");
  try {
    state.load = await api.get(`/sites/${encodeURIComponent(state.site)}/alarm-load?${query}`);
    render(state.load);
    $("load-view").hidden = false;
    $("try-result").hidden = true;
    state.tried = null;
    await Promise.all([showPlots(query), loadRooms()]);
    $("load-status").textContent = t("load.title");
    const kept = new URLSearchParams({ site: state.site });
    if ($("load-to").value) kept.set("to", $("load-to").value);
    history.replaceState(null, "", `?${kept}`);
  } catch (error) {
    $("load-error").textContent = describeError(error);
    $("load-error").hidden = false;
    $("load-status").textContent = "";
  } finally {
    button.disabled = false;
  }
}

// ---- try a change, then apply it ------------------------------------------------------------

function renderTry(result) {
  showTryResult(result, moment);
  fillTable($("try-rules"), result.by_rule.map((r) => row(header(t(`rule.${r.name}`)),
    cell(number(r.current), "num"), cell(number(r.proposed), "num"))), 3);
  fillTable($("try-nights"), result.per_night.map((n) => row(header(nightName(n.night)),
    cell(number(n.current), "num"), cell(number(n.proposed), "num"))), 3);
}

function change() {
  const minutes = $("try-minutes").value.trim();
  const enabled = $("try-enabled").value;
  return { rule: $("try-rule").value, room: $("try-room").value || null,
    enabled: enabled === "" ? null : enabled === "true",
    minutes: minutes === "" ? null : Number(minutes), severity: $("try-severity").value || null };
}

function bindSubmit(form, send) {
  const error = form.querySelector(".form-error");
  const ok = form.querySelector(".form-ok");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    ok.hidden = true;
    const submit = form.querySelector("[type=submit]");
    submit.disabled = true;
    try {
      ok.textContent = await send();
      ok.hidden = !ok.textContent;
    } catch (e) {
      error.textContent = t("admin.error", { reason: e.message });
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
}

async function main() {
  const me = await startPage((text) => {
    $("load-forbidden").textContent = text;
    $("load-forbidden").hidden = false;
  }, t("load.forbidden"));
  if (!me) return;
  if (me.role !== "admin") {
    $("load-forbidden").textContent = t("load.forbidden");
    $("load-forbidden").hidden = false;
    document.body.dataset.access = "forbidden";
    return;
  }
  state.sites = await api.get("/sites");
  $("load").hidden = false;
  document.body.dataset.access = "allowed";
  if (!state.sites.length) {
    $("load-error").textContent = t("ho.no_sites");
    $("load-error").hidden = false;
    return;
  }
  const wanted = params.get("site");
  $("load-site").replaceChildren(...state.sites.map((s) => new Option(`${s.name} (${s.id})`, s.id, false, s.id === wanted)));
  if (params.get("to")) $("load-to").value = params.get("to");
  $("load-form").addEventListener("submit", show);
  document.addEventListener("nattero:language", () => { if (state.load) show(); });

  bindSubmit($("try-form"), async () => {
    if ($("try-minutes").value.trim() === "" && $("try-enabled").value === ""
        && $("try-severity").value === "") {
      throw new Error(t("load.try.nothing"));
    }
    const body = { from: state.load.from, to: state.load.to, changes: [change()] };
    const result = await api.post(`/sites/${encodeURIComponent(state.site)}/backtest`, body);
    state.tried = body;
    renderTry(result);
    return t("try.done", { seconds: number(result.seconds) });
  });
  bindSubmit($("apply-form"), async () => {
    if (!state.tried) throw new Error(t("try.first"));
    const reason = $("apply-reason").value.trim();
    if (!reason) throw new Error(t("load.try.reason"));
    const result = await api.post(`/sites/${encodeURIComponent(state.site)}/backtest`, {
      ...state.tried, apply: true, reason, confirm_risky: $("apply-confirm").checked });
    return result.applied ? t("try.applied") : "";
  });

  await show();
  document.body.dataset.ready = "true";
}

main();
