// The morning handover for the day shift (staff and admins): the server's one-page summary
// of a site's night, shown in a sandboxed iframe and printable. Opened from the night board.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { describeError, startPage } from "./page.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ALLOWED = new Set(["staff", "admin"]);

function fitFrame(frame) {
  try {
    const doc = frame.contentDocument;
    if (doc && doc.documentElement) {
      frame.style.height = `${Math.max(400, doc.documentElement.scrollHeight + 24)}px`;
    }
  } catch { /* keep the CSS height */ }
}

async function show(event) {
  if (event) event.preventDefault();
  const site = $("ho-site").value;
  if (!site) return;
  $("ho-error").hidden = true;
  const query = new URLSearchParams({ site });
  if ($("ho-night").value) query.set("night", $("ho-night").value);
  const button = $("ho-show");
  button.disabled = true;
  button.textContent = t("ho.busy");
  $("ho-status").textContent = t("ho.busy");
  try {
    const html = await (await api.fetchDocument(`/reports/handover?${query}`, "text/html")).text();
    const frame = $("ho-frame");
    frame.addEventListener("load", () => fitFrame(frame), { once: true });
    frame.srcdoc = html;
    $("ho-view").hidden = false;
    $("ho-print").disabled = false;
    $("ho-status").textContent = t("ho.title");
    history.replaceState(null, "", `?${query}`);
  } catch (error) {
    $("ho-error").textContent = describeError(error);
    $("ho-error").hidden = false;
    $("ho-status").textContent = "";
  } finally {
    button.disabled = false;
    button.textContent = t("ho.show");
  }
}

function print() {
  const frame = $("ho-frame");
  try {
    frame.contentWindow.focus();
    frame.contentWindow.print();
  } catch {
    window.print(); // the page's print styles leave only the handover
  }
}

async function main() {
  const me = await startPage((text) => {
    $("ho-forbidden").textContent = text;
    $("ho-forbidden").hidden = false;
  });
  if (!me) return;
  if (!ALLOWED.has(me.role)) {
    $("ho-forbidden").textContent = t("ho.forbidden");
    $("ho-forbidden").hidden = false;
    document.body.dataset.access = "forbidden";
    return;
  }
  document.addEventListener("nattero:language", () => {
    if (!$("ho-show").disabled) $("ho-show").textContent = t("ho.show");
  });
  let sites = [];
  try {
    sites = await api.get("/sites");
  } catch (error) {
    $("ho-error").textContent = describeError(error);
    $("ho-error").hidden = false;
  }
  $("handover").hidden = false;
  document.body.dataset.access = "allowed";
  if (!sites.length) {
    $("ho-error").textContent = t("ho.no_sites");
    $("ho-error").hidden = false;
    $("ho-show").disabled = true;
    return;
  }
  const wanted = params.get("site");
  $("ho-site").replaceChildren(...sites.map((s) => new Option(s.name, s.id, false, s.id === wanted)));
  if (params.get("night")) $("ho-night").value = params.get("night");
  $("ho-form").addEventListener("submit", show);
  $("ho-print").addEventListener("click", print);
  await show();
  document.body.dataset.ready = "true";
}

main();
