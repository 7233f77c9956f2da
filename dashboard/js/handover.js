// The morning handover for the day shift (staff and admins): the server's one-page summary
// of a site's night, shown in a sandboxed iframe and printable. Opened from the night board.

import * as api from "./api.js";
import { ApiError } from "./api.js";
import { t, translatePage, bindLanguageToggle } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ALLOWED = new Set(["staff", "admin"]);

function describeError(error) {
  if (error.status === 0) return t("ev.error.0");
  if (error.status === 403) return `${t("ev.error.403")} (${error.message})`;
  if (error.status === 404) return `${t("ev.error.404")} (${error.message})`;
  if (error.status === 422) return t("ev.invalid", { detail: error.message });
  return t("ev.error", { reason: error.message });
}

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
  translatePage();
  bindLanguageToggle($("lang"));
  $("logout").addEventListener("click", () => api.goToLogin());
  if (!api.tokenClaims()) {
    api.goToLogin();
    return;
  }
  api.startRenewal();

  let me;
  try {
    me = await api.get("/auth/me");
  } catch (error) {
    if (error.status !== 401) {
      $("ho-forbidden").textContent = describeError(error);
      $("ho-forbidden").hidden = false;
    }
    return;
  }
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
