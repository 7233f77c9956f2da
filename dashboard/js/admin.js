// Administration (role admin): sites, rooms and bases, devices, rules, users.
// Every form validates before sending and shows the server's error next to the field it
// concerns; a failed submit never clears what the admin typed.

import * as api from "./api.js";
import { cell, fillTable } from "./tables.js";
import { showTryResult } from "./trychange.js";
import { t, translatePage, bindLanguageToggle, formatAgo, language, locale } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const state = { sites: [], rooms: [], site: null, tab: "devices", rules: [], endingBases: [] };

// ---- forms -------------------------------------------------------------------------------

function fieldMessage(input) {
  const v = input.validity;
  if (v.valueMissing) return t("admin.required");
  if (v.patternMismatch) return t(input.dataset.patternMessage || "admin.invalid");
  if (!v.valid) return input.validationMessage || t("admin.invalid");
  return "";
}

function setFieldError(input, message) {
  const field = input.closest(".field") || input.parentElement;
  let note = field.querySelector(".field-error");
  if (!message) {
    input.removeAttribute("aria-invalid");
    if (note) note.remove();
    return;
  }
  if (!note) {
    note = document.createElement("p");
    note.className = "field-error";
    note.id = `${input.id}-error`;
    field.append(note);
  }
  note.textContent = message;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", note.id);
}

function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") {
      (out[el.name] ||= []);
      if (el.checked) out[el.name].push(el.value);
    } else {
      out[el.name] = el.value.trim();
    }
  }
  return out;
}

/** Wire a form: client-side check, then `send(values)`; errors shown, input kept. */
function bindForm(form, send, { resetOnSuccess = true } = {}) {
  const error = form.querySelector(".form-error");
  const ok = form.querySelector(".form-ok");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    ok.hidden = true;
    let first = null;
    for (const el of form.elements) {
      if (!el.name) continue;
      const message = fieldMessage(el);
      setFieldError(el, message);
      if (message && !first) first = el;
    }
    if (first) {
      first.focus();
      return;
    }
    const submit = form.querySelector("[type=submit]");
    submit.disabled = true;
    try {
      const message = await send(values(form));
      ok.textContent = message || t("admin.saved");
      ok.hidden = false;
      if (resetOnSuccess) form.reset();
    } catch (e) {
      const byField = api.fieldErrors(e);
      let shown = false;
      for (const [name, message] of Object.entries(byField)) {
        const input = form.elements.namedItem(name);
        if (input && input.id) {
          setFieldError(input, message);
          if (!shown) input.focus();
          shown = true;
        }
      }
      error.textContent = t("admin.error", { reason: e.message });
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
}

// ---- try a change (back-test) ------------------------------------------------------------

function tryMoment(iso) {
  const tz = state.sites.find((s) => s.id === state.site)?.tz;
  return new Intl.DateTimeFormat(language() === "da" ? "da-DK" : "en-GB", {
    dateStyle: "medium", timeStyle: "short", ...(tz ? { timeZone: tz } : {}) }).format(new Date(iso));
}

function renderTry(result) {
  showTryResult(result, tryMoment);
  fillTable($("try-nights"), result.per_night.map((n) => {
    const tr = document.createElement("tr");
    tr.append(cell(n.night), cell(String(n.current)), cell(String(n.proposed)));
    return tr;
  }), 3);
}

// ---- tables ------------------------------------------------------------------------------

const hhmm = (value) => String(value || "").slice(0, 5);

function renderSites() {
  fillTable($("sites-body"), state.sites.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.site = s.id;
    const actions = document.createElement("td");
    actions.className = "actions";
    // The server keeps a site that recorded anything (409, with why).
    actions.append(actionButton("site.delete", s.name, () => deleteSite(s), true));
    tr.append(cell(s.id), cell(s.name), cell(s.tz), cell(hhmm(s.night_start)), cell(hhmm(s.night_end)),
      actions);
    return tr;
  }), 6);
  const select = $("admin-site");
  select.replaceChildren(...state.sites.map((s) => new Option(`${s.name} (${s.id})`, s.id, false, s.id === state.site)));
  const boxes = state.sites.map((s) => {
    const label = document.createElement("label");
    label.className = "checkbox";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "sites";
    input.value = s.id;
    label.append(input, document.createTextNode(` ${s.name}`));
    return label;
  });
  $("user-sites").replaceChildren(...boxes);
  const edit = $("site-edit-id");
  const keep = edit.value;
  edit.replaceChildren(...state.sites.map((s) => new Option(`${s.name} (${s.id})`, s.id)));
  if (state.sites.some((s) => s.id === keep)) edit.value = keep;
  fillSiteEdit();
}

/** The edit form shows the chosen site as it is stored. */
function fillSiteEdit() {
  const site = state.sites.find((s) => s.id === $("site-edit-id").value);
  if (!site) return;
  $("site-edit-name").value = site.name;
  $("site-edit-tz").value = site.tz;
  $("site-edit-night-start").value = hhmm(site.night_start);
  $("site-edit-night-end").value = hhmm(site.night_end);
}

async function deleteSite(site) {
  if (!confirm(t("site.delete.confirm", { name: site.name }))) return;
  $("sites-ok").hidden = true;
  $("sites-error").hidden = true;
  try {
    await api.del(`/sites/${encodeURIComponent(site.id)}`);
    $("sites-ok").textContent = t("site.delete.done", { name: site.name });
    $("sites-ok").hidden = false;
  } catch (e) {
    $("sites-error").textContent = t("site.delete.failed", { reason: e.message });
    $("sites-error").hidden = false;
  }
  await loadSites();
  await loadRooms();
}

async function deleteRoom(room) {
  if (!confirm(t("room.delete.confirm", { label: room.label }))) return;
  $("rooms-ok").hidden = true;
  $("rooms-error").hidden = true;
  try {
    await api.del(`/sites/${encodeURIComponent(state.site)}/rooms/${encodeURIComponent(room.id)}`);
    $("rooms-ok").textContent = t("room.delete.done", { label: room.label });
    $("rooms-ok").hidden = false;
  } catch (e) {
    $("rooms-error").textContent = t("admin.error", { reason: e.message });
    $("rooms-error").hidden = false;
  }
  await Promise.all([loadRooms(), loadEndingBases()]);
}

async function relabelRoom(room) {
  const label = prompt(t("room.relabel.prompt", { id: room.id }), room.label);
  if (label === null || !label.trim() || label.trim() === room.label) return;
  $("rooms-ok").hidden = true;
  $("rooms-error").hidden = true;
  try {
    await api.patch(`/sites/${encodeURIComponent(state.site)}/rooms/${encodeURIComponent(room.id)}`,
      { label: label.trim() });
    $("rooms-ok").textContent = t("room.relabel.done", { id: room.id, label: label.trim() });
    $("rooms-ok").hidden = false;
  } catch (e) {
    $("rooms-error").textContent = t("admin.error", { reason: e.message });
    $("rooms-error").hidden = false;
  }
  await loadRooms();
}

function roomLabel(id) {
  const room = state.rooms.find((r) => r.id === id);
  return room ? room.label : id;
}

function renderRooms() {
  fillTable($("rooms-body"), state.rooms.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.room = r.id;
    const actions = document.createElement("td");
    actions.className = "actions";
    actions.append(actionButton("room.relabel", r.label, () => relabelRoom(r)));
    // Only a room that never held a device can go (the server checks alerts too).
    if (!r.devices.length) {
      actions.append(actionButton("room.delete", r.label, () => deleteRoom(r), true));
    }
    tr.append(cell(r.id), cell(r.label), cell(t(`floor.${r.kind}`)),
      cell(r.kind === "flat" ? (r.monitored ? t("yes") : t("state.not_monitored")) : "–"), actions);
    return tr;
  }), 5);
  for (const select of document.querySelectorAll(".room-select")) {
    const keep = select.value;
    const kinds = select.dataset.kinds ? select.dataset.kinds.split(",") : null;
    const options = state.rooms.filter((r) => !kinds || kinds.includes(r.kind))
      .map((r) => new Option(`${r.label} (${r.id})`, r.id));
    if (select.dataset.optional) options.unshift(new Option(t("rules.whole_site"), ""));
    select.replaceChildren(...options);
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  }

  const devices = state.rooms.flatMap((r) => r.devices.map((d) => ({ ...d, room: r.id })));
  fillTable($("devices-body"), devices.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.device = d.id;
    const presence = d.presence === "online" ? t("device.online")
      : d.presence === "offline" ? t("device.offline") : t("device.unknown");
    const battery = typeof d.battery === "number" ? `${d.battery} %` : "–";
    const action = document.createElement("td");
    action.className = "actions";
    action.append(actionButton("device.move", d.id, () => openMove(d)),
      actionButton("device.rotate", d.id, () => rotateDevice(d.id)),
      actionButton("device.revoke", d.id, () => revokeDevice(d.id), true));
    tr.append(cell(d.id), cell(roomLabel(d.room)), cell(t(`kind.${d.kind}`)),
      cell(presence, `presence-${d.presence}`),
      cell(battery, typeof d.battery === "number" && d.battery < 15 ? "presence-offline" : ""),
      cell(d.last_event_at ? formatAgo(d.last_event_at) : t("ago.never")), action);
    return tr;
  }), 7);
}

function renderRules() {
  fillTable($("rules-body"), state.rules.filter((r) => r.site === state.site).map((r) => {
    const tr = document.createElement("tr");
    const enabled = r.enabled === null ? t("rules.default") : r.enabled ? t("yes") : t("no");
    tr.append(cell(t(`rule.${r.rule}`)), cell(r.room ? roomLabel(r.room) : t("rules.whole_site")),
      cell(enabled), cell(r.minutes ?? t("rules.default")),
      cell(r.severity ? t(`severity.${r.severity}`) : t("rules.default")));
    return tr;
  }), 5);
}

/** A row's action button: "Slet" read out as "Slet Lejlighed 1"; `data-action` is the
 * label key's last part ("room.delete" -> "delete"). */
function actionButton(label, target, onClick, danger = false) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = danger ? "button button-danger" : "button";
  button.textContent = t(label);
  button.setAttribute("aria-label", `${t(label)} ${target}`);
  button.dataset.action = label.split(".").pop();
  button.addEventListener("click", onClick);
  return button;
}

async function renderUsers() {
  const users = await api.get("/users");
  state.users = users;
  fillRosterChoices();
  const me = api.tokenClaims()?.sub;
  fillTable($("users-body"), users.map((u) => {
    const tr = document.createElement("tr");
    tr.dataset.username = u.username;
    const actions = document.createElement("td");
    actions.className = "actions";
    const name = encodeURIComponent(u.username);
    // A municipal (single sign-on) account has no password here: the directory decides.
    if (!u.sso) actions.append(actionButton("user.passwd", u.username, () => changePassword(u.username)));
    // Not on your own row: disabling or deleting yourself would end this page's login.
    if (u.username !== me) {
      if (u.totp) {
        actions.append(actionButton("user.totp_reset", u.username, () => changeUser(
          `/users/${name}/totp`, t("user.totp_reset.done", { name: u.username }),
          t("user.totp_reset.confirm", { name: u.username }), "DELETE")));
      }
      actions.append(u.disabled
        ? actionButton("user.enable", u.username, () => changeUser(`/users/${name}/enable`,
          t("user.enabled.done", { name: u.username })))
        : actionButton("user.disable", u.username, () => changeUser(`/users/${name}/disable`,
          t("user.disabled.done", { name: u.username }),
          t("user.disable.confirm", { name: u.username })), true),
      actionButton("user.delete", u.username, () => changeUser(`/users/${name}`,
        t("user.deleted.done", { name: u.username }),
        t("user.delete.confirm", { name: u.username }), "DELETE"), true));
    }
    if (u.locked_clients > 0) {
      actions.prepend(actionButton("user.unlock", u.username, () => changeUser(`/users/${name}/unlock`,
        t("user.unlocked.done", { name: u.username }))));
    }
    const status = [u.disabled ? t("user.disabled")
      : u.locked_clients > 0 ? t("user.locked", { n: u.locked_clients }) : t("user.active"),
    ...(u.sso ? [t("user.sso")] : []), ...(u.totp ? [t("user.totp")] : [])].join(" · ");
    tr.append(cell(u.username + (u.username === me ? ` ${t("user.you")}` : "")),
      cell(t(`role.${u.role}`)), cell(u.sites.join(", ") || "–"),
      cell(status, u.disabled || u.locked_clients > 0 ? "presence-offline" : ""),
      actions);
    return tr;
  }), 5);
}

async function renderBoards() {
  const site = state.site;
  if (!site) return;
  const boards = (await api.get("/boards")).filter((b) => b.site === site);
  if (site !== state.site) return; // another site was chosen meanwhile
  fillTable($("boards-body"), boards.map((b) => {
    const tr = document.createElement("tr");
    tr.dataset.boardId = String(b.id);
    const actions = document.createElement("td");
    actions.className = "actions";
    if (!b.revoked_at) actions.append(actionButton("board.revoke", b.label, () => revokeBoard(b), true));
    tr.append(cell(b.label), cell(new Date(b.enrolled_at).toLocaleString(document.documentElement.lang)),
      cell(b.last_seen_at ? formatAgo(b.last_seen_at) : "–"),
      cell(t(b.revoked_at ? "board.revoked" : "board.live"), b.revoked_at ? "presence-offline" : ""),
      actions);
    return tr;
  }), 5);
}

async function revokeBoard(board) {
  if (!confirm(t("board.revoke.confirm", { label: board.label }))) return;
  $("boards-error").hidden = true;
  $("boards-ok").hidden = true;
  try {
    await api.post(`/boards/${board.id}/revoke`);
    $("boards-ok").textContent = t("board.revoked.done", { label: board.label });
    $("boards-ok").hidden = false;
  } catch (e) {
    $("boards-error").textContent = t("admin.error", { reason: e.message });
    $("boards-error").hidden = false;
  }
  await renderBoards();
}

function showUsersResult(message, failed) {
  $("users-ok").hidden = failed;
  $("users-error").hidden = !failed;
  $(failed ? "users-error" : "users-ok").textContent = message;
}

async function changeUser(path, doneText, question = null, method = "POST") {
  if (question && !confirm(question)) return;
  try {
    await (method === "DELETE" ? api.del(path) : api.post(path));
    showUsersResult(doneText, false);
  } catch (e) {
    showUsersResult(t("admin.error", { reason: e.message }), true);
  }
  await renderUsers();
}

async function changePassword(username) {
  const password = prompt(t("user.passwd.prompt", { name: username }));
  if (password === null) return;
  if (password.length < 10) {
    showUsersResult(t("user.passwd.short"), true);
    return;
  }
  try {
    await api.post(`/users/${encodeURIComponent(username)}/password`, { password });
    showUsersResult(t("user.passwd.done", { name: username }), false);
  } catch (e) {
    showUsersResult(t("admin.error", { reason: e.message }), true);
  }
}

// ---- monitoring bases that end -----------------------------------------------------------

// ---- the night's roster (who an unanswered call goes to) ---------------------------------

/** The roster form's choices: the sites, and the accounts that can take calls. */
function fillRosterChoices() {
  const names = (state.users || []).map((u) => u.username);
  const contact = $("contact-username");
  const was = contact.value;
  contact.replaceChildren(...names.map((name) => new Option(name, name)));
  if (names.includes(was)) contact.value = was;
  const policySite = $("policy-site");
  const policyWas = policySite.value || state.site;
  policySite.replaceChildren(...state.sites.map((s) => new Option(s.name, s.id)));
  if (policyWas) policySite.value = policyWas;
  const siteSelect = $("roster-site");
  const chosen = siteSelect.value || state.site;
  siteSelect.replaceChildren(...state.sites.map((s) => new Option(s.name, s.id)));
  if (chosen) siteSelect.value = chosen;
  const site = siteSelect.value;
  const people = (state.users || []).filter((u) => !u.disabled && u.role !== "evaluator"
    && (u.role === "admin" || u.sites.includes(site)));
  for (const id of ["roster-duty", "roster-second", "roster-coordinator"]) {
    const select = $(id);
    const was = select.value;
    select.replaceChildren(new Option(t("roster.nobody"), ""),
      ...people.map((u) => new Option(u.username, u.username)));
    if (people.some((u) => u.username === was)) select.value = was;
  }
  if (!$("roster-night").value && site) {
    $("roster-night").value = todayIn(state.sites.find((s) => s.id === site)?.tz);
  }
}

/** Show the stored roster of the chosen site and night (blank when there is none). */
async function loadRoster() {
  fillRosterChoices();
  const site = $("roster-site").value;
  const night = $("roster-night").value;
  if (!site || !night) return;
  let roster = { duty: null, second: null, coordinator: null };
  try {
    roster = await api.get(`/sites/${encodeURIComponent(site)}/roster/${night}`);
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  $("roster-duty").value = roster.duty || "";
  $("roster-second").value = roster.second || "";
  $("roster-coordinator").value = roster.coordinator || "";
}

/** A date (YYYY-MM-DD) in words of the language: "20. december 2026". */
function longDate(day) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "long", timeZone: "UTC" })
    .format(new Date(`${day}T00:00:00Z`));
}

function todayIn(timeZone) {
  return new Intl.DateTimeFormat("en-CA", timeZone ? { timeZone } : {}).format(new Date());
}

/** The banner over every tab: flats whose basis has ended or ends within the window. */
function renderBasisBanner() {
  const ending = state.endingBases;
  $("basis-banner").hidden = !ending.length;
  if (!ending.length) return;
  const expired = ending.filter((b) => b.expired).length;
  $("basis-banner-title").textContent = expired
    ? t("basis.banner.expired", { n: expired, ending: ending.length - expired })
    : t("basis.banner.ending", { n: ending.length });
  $("basis-banner-list").replaceChildren(...ending.map((b) => {
    const site = state.sites.find((s) => s.id === b.site);
    const days = Math.round((Date.parse(b.ends) - Date.parse(todayIn(site?.tz))) / 86_400_000);
    const li = document.createElement("li");
    li.dataset.site = b.site;
    li.dataset.room = b.room;
    li.dataset.state = b.expired ? "expired" : "ending";
    const what = t(b.kind === "decision" ? "basis.decision" : "basis.consent",
      { reference: b.reference || "" });
    li.textContent = b.expired
      ? t("basis.expired", { room: b.label, site: site?.name ?? b.site, what, date: longDate(b.ends) })
      : t("basis.ending", { room: b.label, site: site?.name ?? b.site, what, date: longDate(b.ends),
        n: Math.max(0, days) });
    return li;
  }));
}

async function loadEndingBases() {
  state.endingBases = await api.get("/bases/ending");
  renderBasisBanner();
}

// ---- bulk import -------------------------------------------------------------------------

let credentialsUrl = null;

function forgetCredentials() {
  if (credentialsUrl) URL.revokeObjectURL(credentialsUrl);
  credentialsUrl = null;
  $("import-credentials").hidden = true;
}

/** The new devices' passwords as a file to download: in this page's memory only, once. */
function offerCredentials(result) {
  forgetCredentials();
  const columns = ["device", "username", "client_id", "password", "broker", "topic"];
  const quote = (value) => `"${String(value).replaceAll('"', '""')}"`;
  const lines = [columns.join(","), ...result.credentials.map((c) => columns.map((k) => quote(c[k])).join(","))];
  credentialsUrl = URL.createObjectURL(new Blob([`${lines.join("\r\n")}\r\n`], { type: "text/csv" }));
  const link = $("import-download");
  link.href = credentialsUrl;
  link.download = `nattero-${result.site}-sensorer.csv`;
  $("import-credentials").hidden = false;
}

function bindImport() {
  const form = $("import-form");
  const error = form.querySelector(".form-error");
  const ok = form.querySelector(".form-ok");
  const problems = $("import-problems");
  const input = $("import-file");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    ok.hidden = true;
    problems.hidden = true;
    forgetCredentials();
    const file = input.files[0];
    setFieldError(input, file ? "" : t("admin.required"));
    if (!file) {
      input.focus();
      return;
    }
    const submit = form.querySelector("[type=submit]");
    submit.disabled = true;
    try {
      const result = await api.post(`/sites/${encodeURIComponent(state.site)}/import`,
        { csv: await file.text(), dry_run: $("import-dry-run").checked });
      ok.textContent = t(result.dry_run ? "import.checked" : "import.done",
        { rooms: result.rooms_added.length, devices: result.devices_added.length });
      ok.hidden = false;
      if (result.credentials.length) offerCredentials(result);
      if (!result.dry_run) {
        form.reset();
        await loadRooms();
      }
    } catch (e) {
      const found = Array.isArray(e.payload?.problems) ? e.payload.problems : [];
      error.textContent = found.length ? e.message : t("admin.error", { reason: e.message });
      error.hidden = false;
      problems.replaceChildren(...found.map((p) => {
        const li = document.createElement("li");
        li.dataset.line = String(p.line);
        li.textContent = p.message;
        return li;
      }));
      problems.hidden = !found.length;
    } finally {
      submit.disabled = false;
    }
  });
}

// ---- data --------------------------------------------------------------------------------

async function loadSites() {
  state.sites = await api.get("/sites");
  if (!state.sites.some((s) => s.id === state.site)) state.site = state.sites[0]?.id ?? null;
  renderSites();
}

async function loadRooms() {
  const site = state.site;
  const rooms = site ? await api.get(`/sites/${encodeURIComponent(site)}/rooms`) : [];
  // A slower answer for the site chosen before must not overwrite the one chosen now.
  if (site !== state.site) return;
  state.rooms = rooms;
  renderRooms();
  renderRules();
}

/** The selected site's baseline period into its form (empty when none is set yet). */
async function loadBaseline() {
  const site = state.site;
  let period = null;
  try {
    period = site ? await api.get(`/sites/${encodeURIComponent(site)}/baseline`) : null;
  } catch {
    period = null; // 404: none set yet
  }
  if (site !== state.site) return; // another site was chosen meanwhile
  $("baseline-first").value = period?.first ?? "";
  $("baseline-last").value = period?.last ?? "";
}

let setupUrl = null;

/** Hide a device's credentials and let go of its setup file (it holds the password). */
function hideCredentials() {
  if (setupUrl) URL.revokeObjectURL(setupUrl);
  setupUrl = null;
  $("credentials").hidden = true;
  $("cred-qr").removeAttribute("src");
}

/** A device's new credentials, shown once: the setup as text, QR code and a file to
 * download (in this page's memory only). */
function showCredentials(id, creds) {
  hideCredentials();
  const setup = creds.setup;
  $("credentials-title").textContent = t("device.credentials", { id });
  $("cred-username").textContent = creds.username;
  $("cred-client-id").textContent = creds.client_id;
  $("cred-password").textContent = creds.password;
  $("cred-broker").textContent = `${setup.tls ? "mqtts" : "mqtt"}://${setup.broker_host}:${setup.broker_port}`;
  $("cred-topic").textContent = setup.topic;
  const qr = $("cred-qr");
  qr.src = creds.qr_svg;
  qr.alt = t("device.setup.qr", { id });
  setupUrl = URL.createObjectURL(new Blob([creds.setup_file], { type: "application/json" }));
  const link = $("cred-download");
  link.href = setupUrl;
  link.download = `nattero-${setup.site}-${id}.json`;
  $("credentials").hidden = false;
}

async function rotateDevice(id) {
  if (!confirm(t("device.rotate.confirm", { id }))) return;
  $("devices-error").hidden = true;
  try {
    showCredentials(id, await api.post(
      `/sites/${encodeURIComponent(state.site)}/devices/${encodeURIComponent(id)}/rotate`));
  } catch (e) {
    $("devices-error").textContent = t("admin.error", { reason: e.message });
    $("devices-error").hidden = false;
  }
}

/** The move dialog for one device: the site's other rooms to choose from. */
function openMove(device) {
  const dialog = $("move-dialog");
  const form = $("move-form");
  dialog.dataset.device = device.id;
  $("move-title").textContent = t("device.move.title", { id: device.id });
  const select = $("move-room");
  select.replaceChildren(...state.rooms.filter((r) => r.id !== device.room)
    .map((r) => new Option(`${r.label} (${r.id})`, r.id)));
  form.querySelector(".form-error").hidden = true;
  dialog.showModal();
}

function bindMove() {
  const dialog = $("move-dialog");
  const form = $("move-form");
  const error = form.querySelector(".form-error");
  $("move-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = dialog.dataset.device;
    const room = $("move-room").value;
    error.hidden = true;
    if (!room) {
      error.textContent = t("admin.required");
      error.hidden = false;
      return;
    }
    try {
      await api.patch(`/sites/${encodeURIComponent(state.site)}/devices/${encodeURIComponent(id)}`,
        { room });
    } catch (e) {
      error.textContent = t("admin.error", { reason: e.message });
      error.hidden = false;
      return;
    }
    dialog.close();
    $("devices-error").hidden = true;
    await loadRooms();
    $("devices-ok").textContent = t("device.move.done", { id, label: roomLabel(room) });
    $("devices-ok").hidden = false;
  });
}

// ---- bridges ------------------------------------------------------------------------------

async function loadBridges() {
  $("bridges-error").hidden = true;
  let bridges = [];
  try {
    bridges = await api.get("/bridges");
  } catch (e) {
    $("bridges-error").textContent = t("bridge.unreadable", { reason: e.message });
    $("bridges-error").hidden = false;
  }
  fillTable($("bridges-body"), bridges.map((b) => {
    const tr = document.createElement("tr");
    tr.dataset.bridge = b.name;
    const actions = document.createElement("td");
    actions.className = "actions";
    actions.append(actionButton("bridge.revoke", b.name, () => revokeBridge(b), true));
    tr.append(cell(b.name), cell(b.source === "zigbee2mqtt" ? "Zigbee2MQTT"
      : b.source === "chirpstack" ? "ChirpStack" : "–"), cell(b.topics.join(", ")), actions);
    return tr;
  }), 4);
}

async function revokeBridge(bridge) {
  if (!confirm(t("bridge.revoke.confirm", { name: bridge.name }))) return;
  $("bridges-ok").hidden = true;
  $("bridges-error").hidden = true;
  try {
    await api.del(`/bridges/${encodeURIComponent(bridge.name)}`);
    $("bridges-ok").textContent = t("bridge.revoked", { name: bridge.name });
    $("bridges-ok").hidden = false;
  } catch (e) {
    $("bridges-error").textContent = t("admin.error", { reason: e.message });
    $("bridges-error").hidden = false;
  }
  await loadBridges();
}

function showBridgeCredentials(name, creds) {
  $("bridge-credentials-title").textContent = t("bridge.credentials", { name });
  $("bridge-cred-username").textContent = creds.username;
  $("bridge-cred-client-id").textContent = creds.client_id;
  $("bridge-cred-password").textContent = creds.password;
  $("bridge-credentials").hidden = false;
}

async function revokeDevice(id) {
  if (!confirm(t("device.revoke.confirm", { id }))) return;
  $("devices-error").hidden = true;
  try {
    await api.post(`/sites/${encodeURIComponent(state.site)}/devices/${encodeURIComponent(id)}/revoke`);
  } catch (e) {
    $("devices-error").textContent = t("admin.error", { reason: e.message });
    $("devices-error").hidden = false;
  }
  await loadRooms();
}

function showTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll("[data-tab]")) {
    const selected = button.dataset.tab === tab;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`panel-${button.dataset.tab}`).hidden = !selected;
  }
  $("site-picker").hidden = tab === "sites" || tab === "users";
  history.replaceState(null, "", `#${tab}`);
  // Boards pair on another tablet: show the list as it is now, not as it was on load.
  if (tab === "boards" && state.site) renderBoards();
}

async function main() {
  translatePage();
  if (!api.tokenClaims()) {
    api.goToLogin();
    return;
  }
  api.startRenewal();
  bindLanguageToggle($("lang"));
  $("logout").addEventListener("click", () => api.goToLogin());
  try {
    await api.get("/users"); // the admin check the server makes; the token's role is only a hint
  } catch (e) {
    if (e.status === 403) {
      $("forbidden").hidden = false;
      return;
    }
    throw e;
  }
  $("admin").hidden = false;
  bindMove();
  const tabs = [...document.querySelectorAll("[data-tab]")];
  tabs.forEach((button, index) => {
    button.addEventListener("click", () => showTab(button.dataset.tab));
    button.addEventListener("keydown", (event) => {
      const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(index + step + tabs.length) % tabs.length];
      next.focus();
      showTab(next.dataset.tab);
    });
  });
  const wanted = location.hash.slice(1);
  showTab(tabs.some((b) => b.dataset.tab === wanted) ? wanted : "devices");

  $("admin-site").addEventListener("change", async (event) => {
    state.site = event.target.value;
    hideCredentials();
    $("pairing").hidden = true;
    forgetCredentials();
    await Promise.all([loadRooms(), renderBoards(), loadBaseline()]);
  });
  document.addEventListener("nattero:language", () => {
    renderSites();
    renderRooms();
    renderRules();
    renderUsers();
    renderBoards();
    renderBasisBanner();
  });

  const sitePath = () => `/sites/${encodeURIComponent(state.site)}`;
  bindForm($("site-form"), async (v) => {
    const done = await api.post("/sites", { id: v.id, name: v.name, tz: v.tz,
      night: `${v.night_start}-${v.night_end}` });
    state.site = v.id;
    await loadSites();
    await loadRooms();
    return done.message;
  });
  $("site-edit-id").addEventListener("change", fillSiteEdit);
  bindForm($("site-edit-form"), async (v) => {
    const done = await api.patch(`/sites/${encodeURIComponent(v.id)}`,
      { name: v.name, tz: v.tz, night: `${v.night_start}-${v.night_end}` });
    await loadSites();
    return done.message && t("site.edit.done", { name: v.name });
  }, { resetOnSuccess: false });
  bindForm($("room-form"), async (v) => {
    const done = await api.post(`${sitePath()}/rooms`, { id: v.id, kind: v.kind, label: v.label || null });
    await loadRooms();
    return done.message;
  });
  bindForm($("basis-form"), async (v) => {
    const body = { kind: v.kind, reference: v.reference || null,
      valid_from: v.valid_from || null, valid_to: v.valid_to || null };
    const done = await api.post(`${sitePath()}/rooms/${encodeURIComponent(v.room)}/basis`, body);
    await Promise.all([loadRooms(), loadEndingBases()]);
    return done.message;
  });
  bindForm($("baseline-form"), async (v) => {
    await api.put(`${sitePath()}/baseline`, { first: v.first, last: v.last });
    // A date of the form (YYYY-MM-DD, a calendar day) in the language's words: "1. juni 2026".
    const day = (iso) => new Intl.DateTimeFormat(locale(), { dateStyle: "long", timeZone: "UTC" })
      .format(new Date(`${iso}T00:00:00Z`));
    return t("baseline.saved", { first: day(v.first), last: day(v.last) });
  }, { resetOnSuccess: false });
  bindForm($("resident-form"), async (v) => {
    await api.post(`${sitePath()}/rooms/${encodeURIComponent(v.room)}/outcomes`, {
      noted_on: v.noted_on, self_reliance: Number(v.self_reliance),
      quality_of_life: Number(v.quality_of_life) });
    return t("resident.saved");
  });
  bindForm($("device-form"), async (v) => {
    const creds = await api.post(`${sitePath()}/devices`, { id: v.id, room: v.room, kind: v.kind,
      heartbeat_s: Number(v.heartbeat_s) });
    showCredentials(v.id, creds);
    await loadRooms();
    return "";
  });
  bindForm($("bridge-form"), async (v) => {
    const creds = await api.post("/bridges", { name: v.name, source: v.source,
      application_id: v.application_id || null });
    showBridgeCredentials(v.name, creds);
    await loadBridges();
    return "";
  });
  loadBridges();
  bindForm($("rule-form"), async (v) => {
    const body = { rule: v.rule, room: v.room || null,
      enabled: v.enabled === "" ? null : v.enabled === "true",
      minutes: v.minutes === "" ? null : Number(v.minutes),
      severity: v.severity || null };
    const saved = await api.put(`${sitePath()}/rules`, body);
    state.rules = state.rules.filter((r) => !(r.site === saved.site && r.room === saved.room && r.rule === saved.rule));
    state.rules.push(saved);
    renderRules();
    return "";
  }, { resetOnSuccess: false });
  // "Try a change": the rule form's values, back-tested on stored nights, then applied.
  const ruleChange = () => {
    const v = values($("rule-form"));
    return { rule: v.rule, room: v.room || null,
      enabled: v.enabled === "" ? null : v.enabled === "true",
      minutes: v.minutes === "" ? null : Number(v.minutes), severity: v.severity || null };
  };
  let tried = null;
  bindForm($("try-form"), async (v) => {
    const body = { from: v.from, to: v.to, changes: [ruleChange()] };
    const result = await api.post(`${sitePath()}/backtest`, body);
    tried = body;
    renderTry(result);
    return t("try.done", { seconds: result.seconds.toLocaleString(language() === "da" ? "da-DK" : "en-GB", { maximumFractionDigits: 1 }) });
  }, { resetOnSuccess: false });
  bindForm($("apply-form"), async (v) => {
    if (!tried) throw new Error(t("try.first"));
    const result = await api.post(`${sitePath()}/backtest`, { ...tried, apply: true,
      reason: v.reason, confirm_risky: (v.confirm || []).includes("yes") });
    for (const change of tried.changes) {
      state.rules = state.rules.filter((r) => !(r.site === state.site && r.room === change.room && r.rule === change.rule));
      state.rules.push({ site: state.site, ...change });
    }
    renderRules();
    return result.applied ? t("try.applied") : "";
  }, { resetOnSuccess: false });
  bindForm($("user-form"), async (v) => {
    await api.post("/users", { username: v.username, password: v.password, role: v.role, sites: v.sites || [] });
    await renderUsers();
    return "";
  });

  $("roster-site").addEventListener("change", () => loadRoster());
  $("roster-night").addEventListener("change", () => loadRoster());
  bindForm($("roster-form"), async (v) => {
    const roster = await api.put(`/sites/${encodeURIComponent(v.site)}/roster/${v.night}`,
      { duty: v.duty || null, second: v.second || null, coordinator: v.coordinator || null });
    const site = state.sites.find((s) => s.id === v.site)?.name || v.site;
    return t("roster.saved", { site, night: longDate(roster.night) });
  }, { resetOnSuccess: false });

  bindForm($("contact-form"), async (v) => {
    await api.put(`/users/${encodeURIComponent(v.username)}/contact`, { email: v.email || null });
    return v.email ? t("contact.saved", { name: v.username, email: v.email })
      : t("contact.removed", { name: v.username });
  }, { resetOnSuccess: false });
  bindForm($("policy-form"), async (v) => {
    if (Number(v.coordinator) <= Number(v.second)) throw new Error(t("policy.order"));
    await api.put(`/sites/${encodeURIComponent(v.site)}/escalation/${v.severity}`,
      { second_after_minutes: Number(v.second), coordinator_after_minutes: Number(v.coordinator) });
    const site = state.sites.find((s) => s.id === v.site)?.name || v.site;
    return t("policy.saved", { site, second: v.second, coordinator: v.coordinator });
  }, { resetOnSuccess: false });

  bindForm($("pairing-form"), async (v) => {
    const pairing = await api.post(`${sitePath()}/boards/pairings`, { label: v.label });
    $("pairing-code").textContent = pairing.code;
    $("pairing-expires").textContent = t("pairing.expires",
      { time: new Date(pairing.expires_at).toLocaleTimeString(document.documentElement.lang,
        { hour: "2-digit", minute: "2-digit" }) });
    $("pairing").hidden = false;
    return "";
  });

  bindImport();

  await loadSites();
  await Promise.all([loadRooms(), renderUsers(), renderBoards(), loadBaseline(),
    loadEndingBases()]);
  await loadRoster();
}

main();
