// The evaluator page (role evaluator or admin): anonymous occupancy exports and the
// benefit-evaluation report. No live data: this page never opens the alert stream.
// Files are fetched with the bearer token and saved from a blob (a plain link could not
// carry the token); the report is the server's own HTML, shown in a sandboxed iframe.

import * as api from "./api.js";
import { t, language } from "./i18n.js";
import { describeError, startPage } from "./page.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ALLOWED = new Set(["evaluator", "admin"]);
const DEFAULT_DAYS = 30;
const MIN_REASON = 10; // evaluation.exports.MIN_REASON: room-level exports say why (audited)

const state = {
  me: null,
  typedSite: false,     // true when the site list could not be loaded: the user types the id
  exportDone: null,     // {name, size, format} of the last download, re-rendered on language change
  reportShown: false,
};
window.__natteroEvaluator = state; // for support and tests: read-only by convention

// ---- small helpers ---------------------------------------------------------------------

function localDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function daysAgo(n) {
  const date = new Date();
  date.setDate(date.getDate() - n);
  return localDate(date);
}

function formatSize(bytes) {
  const locale = language() === "da" ? "da-DK" : "en-GB";
  const [unit, value] = bytes >= 1_000_000 ? ["megabyte", bytes / 1_000_000]
    : bytes >= 1000 ? ["kilobyte", bytes / 1000] : ["byte", bytes];
  return new Intl.NumberFormat(locale, { style: "unit", unit, maximumFractionDigits: 1 }).format(value);
}

function filenameOf(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header);
  return match ? decodeURIComponent(match[1]) : fallback;
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function showError(id, text) {
  $(id).textContent = text;
  $(id).hidden = !text;
}

async function busy(button, busyKey, idleKey, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = t(busyKey);
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = t(idleKey);
  }
}

// ---- the form ----------------------------------------------------------------------------

function markInvalid(input, invalid) {
  if (invalid) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

/** Site and period, checked; null (with the error shown and focus on the field) if wrong. */
function scope() {
  showError("ev-scope-error", "");
  const siteInput = state.typedSite ? $("ev-site-typed") : $("ev-site");
  const site = siteInput.value.trim();
  const from = $("ev-from");
  const to = $("ev-to");
  for (const input of [siteInput, from, to]) markInvalid(input, false);
  const problems = [];
  if (!site || (state.typedSite && !siteInput.checkValidity())) {
    problems.push([siteInput, t("ev.site.missing")]);
  }
  if (!from.value) problems.push([from, t("ev.period.invalid")]);
  if (!to.value) problems.push([to, t("ev.period.invalid")]);
  if (from.value && to.value && from.value > to.value) problems.push([from, t("ev.period.invalid")]);
  if (problems.length) {
    for (const [input] of problems) markInvalid(input, true);
    showError("ev-scope-error", [...new Set(problems.map(([, text]) => text))].join(" "));
    problems[0][0].focus();
    return null;
  }
  return { site, from: from.value, to: to.value };
}

function assumptions() {
  showError("report-error", "");
  const fields = [["ev-rounds", "rounds_per_night"], ["ev-check", "minutes_per_check"],
    ["ev-handling", "handling_minutes"], ["ev-wake", "wake_share"]];
  const out = {};
  let firstBad = null;
  for (const [id, name] of fields) {
    const input = $(id);
    const bad = !input.checkValidity();
    markInvalid(input, bad);
    if (bad && !firstBad) firstBad = input;
    if (!bad && input.value.trim() !== "") out[name] = input.value.trim();
  }
  if (firstBad) {
    const label = document.querySelector(`label[for="${firstBad.id}"]`).textContent;
    showError("report-error", t("ev.invalid", { detail: `${label}: ${firstBad.validationMessage}` }));
    firstBad.focus();
    return null;
  }
  return out;
}

function renderExportDone() {
  const status = $("export-status");
  const done = state.exportDone;
  if (!done) {
    status.replaceChildren();
    return;
  }
  const line = document.createElement("p");
  line.className = "form-ok";
  line.textContent = t("ev.export.done", { name: done.name, size: formatSize(done.size) });
  const manifest = document.createElement("p");
  manifest.textContent = t(done.format.startsWith("csv") ? "ev.manifest.zip" : `ev.manifest.${done.format}`);
  status.replaceChildren(line, manifest);
  status.dataset.filename = done.name;
}

async function downloadExport() {
  const chosen = scope();
  if (!chosen) return;
  showError("export-error", "");
  state.exportDone = null;
  renderExportDone();
  const format = $("ev-format").value;
  const level = $("ev-level").value;
  const query = new URLSearchParams({ site: chosen.site, from: chosen.from, to: chosen.to,
    bucket: $("ev-bucket").value, level, format });
  if (level === "room") {
    const reason = $("ev-reason");
    const bad = reason.value.trim().length < MIN_REASON;
    markInvalid(reason, bad);
    if (bad) {
      showError("export-error", t("ev.reason.missing"));
      reason.focus();
      return;
    }
    query.set("reason", reason.value.trim());
  }
  const button = $("export-download");
  await busy(button, "ev.export.busy", "ev.export.download", async () => {
    try {
      const response = await api.fetchDocument(`/exports/occupancy?${query}`);
      const blob = await response.blob();
      const name = filenameOf(response, `occupancy-${chosen.site}.${format.startsWith("csv") ? "csv.zip" : format}`);
      saveBlob(blob, name);
      state.exportDone = { name, size: blob.size, format };
      renderExportDone();
    } catch (error) {
      showError("export-error", describeError(error));
    }
  });
}

function reportQuery(chosen, extra, format) {
  // In the page's language: the report is Danish first, English when the page is.
  const query = new URLSearchParams({
    site: chosen.site, from: chosen.from, to: chosen.to, format, lang: language() });
  for (const [name, value] of Object.entries(extra)) query.set(name, value);
  return query;
}

function fitFrame(frame) {
  // Same origin through `allow-same-origin` (no scripts run inside): size it to its page.
  try {
    const doc = frame.contentDocument;
    if (doc && doc.documentElement) {
      // The report's own "recalculate" form cannot work here (sandboxed, no token): the
      // assumption fields above this frame do that job.
      for (const form of doc.querySelectorAll("form")) form.hidden = true;
      frame.style.height = `${Math.max(400, doc.documentElement.scrollHeight + 24)}px`;
    }
  } catch { /* keep the CSS height */ }
}

async function showReport() {
  const chosen = scope();
  if (!chosen) return;
  const extra = assumptions();
  if (!extra) return;
  $("report-status").textContent = "";
  const button = $("report-show");
  await busy(button, "ev.report.busy", "ev.report.show", async () => {
    try {
      const response = await api.fetchDocument(`/reports/benefit?${reportQuery(chosen, extra, "html")}`);
      const html = await response.text();
      const frame = $("report-frame");
      frame.addEventListener("load", () => fitFrame(frame), { once: true });
      frame.srcdoc = html;
      $("report-view").hidden = false;
      state.reportShown = true;
      $("report-status").textContent = t("ev.report.shown");
    } catch (error) {
      showError("report-error", describeError(error));
    }
  });
}

async function downloadPdf() {
  const chosen = scope();
  if (!chosen) return;
  const extra = assumptions();
  if (!extra) return;
  $("report-status").textContent = "";
  const button = $("report-pdf");
  await busy(button, "ev.report.pdf.busy", "ev.report.pdf", async () => {
    try {
      const response = await api.fetchDocument(`/reports/benefit?${reportQuery(chosen, extra, "pdf")}`);
      const blob = await response.blob();
      const name = filenameOf(response, `benefit-${chosen.site}.pdf`);
      saveBlob(blob, name);
      $("report-status").textContent = t("ev.export.done", { name, size: formatSize(blob.size) });
    } catch (error) {
      showError("report-error", describeError(error));
    }
  });
}

// ---- sites ---------------------------------------------------------------------------------

async function loadSites() {
  let sites = [];
  try {
    sites = await api.get("/sites");
  } catch (error) {
    console.warn("nattero evaluator: sites unavailable; the site id is typed instead", error);
  }
  const select = $("ev-site");
  const wanted = params.get("site");
  select.replaceChildren(...sites.map((s) =>
    new Option(s.name === s.id ? s.id : `${s.name} (${s.id})`, s.id, false, s.id === wanted)));
  state.typedSite = sites.length === 0;
  $("ev-site-field").hidden = state.typedSite;
  $("ev-site-typed-field").hidden = !state.typedSite;
  if (state.typedSite && wanted) $("ev-site-typed").value = wanted;
}

// ---- start -----------------------------------------------------------------------------------

function renderForbidden() {
  if (!state.me || ALLOWED.has(state.me.role)) return;
  $("ev-forbidden-text").textContent = t("ev.forbidden", { role: t(`role.${state.me.role}`) });
}

async function main() {
  state.me = await startPage((text) => showError("export-error", text));
  if (!state.me) return;
  document.addEventListener("nattero:language", () => {
    renderForbidden();
    renderExportDone();
    if (params.get("reason") === "board") $("ev-notice").textContent = t("ev.from_board");
  });
  if (!ALLOWED.has(state.me.role)) {
    renderForbidden();
    $("ev-forbidden").hidden = false;
    document.body.dataset.access = "forbidden";
    return;
  }
  document.body.dataset.access = "allowed";
  $("admin-link").hidden = state.me.role !== "admin";
  $("board-link").hidden = state.me.role !== "admin";
  if (params.get("reason") === "board") {
    $("ev-notice").textContent = t("ev.from_board");
    $("ev-notice").hidden = false;
  }
  $("ev-from").value = params.get("from") || daysAgo(DEFAULT_DAYS);
  $("ev-to").value = params.get("to") || daysAgo(1);
  $("ev-form").addEventListener("submit", (event) => event.preventDefault());
  $("export-download").addEventListener("click", downloadExport);
  // Room level needs a reason (written to the audit log); site level does not ask for one.
  const showReason = () => { $("ev-reason-field").hidden = $("ev-level").value !== "room"; };
  $("ev-level").addEventListener("change", showReason);
  showReason();
  $("report-show").addEventListener("click", showReport);
  $("report-pdf").addEventListener("click", downloadPdf);
  await loadSites();
  $("evaluator").hidden = false;
  document.body.dataset.ready = "true";
}

main();
