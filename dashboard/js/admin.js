// Administration (role admin): sites, rooms and bases, devices, rules, users.
// Every form validates before sending and shows the server's error next to the field it
// concerns; a failed submit never clears what the admin typed.

import * as api from "./api.js";
import { t, translatePage, bindLanguageToggle, formatAgo } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const state = { sites: [], rooms: [], site: null, tab: "devices", rules: [] };

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

// ---- tables ------------------------------------------------------------------------------

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "–";
  if (className) td.className = className;
  return td;
}

function fillTable(tbody, rows, columns) {
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell(t("admin.empty"));
    td.colSpan = columns;
    tr.append(td);
    tbody.replaceChildren(tr);
    return;
  }
  tbody.replaceChildren(...rows);
}

const hhmm = (value) => String(value || "").slice(0, 5);

function renderSites() {
  fillTable($("sites-body"), state.sites.map((s) => {
    const tr = document.createElement("tr");
    tr.append(cell(s.id), cell(s.name), cell(s.tz), cell(hhmm(s.night_start)), cell(hhmm(s.night_end)));
    return tr;
  }), 5);
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
}

function roomLabel(id) {
  const room = state.rooms.find((r) => r.id === id);
  return room ? room.label : id;
}

function renderRooms() {
  fillTable($("rooms-body"), state.rooms.map((r) => {
    const tr = document.createElement("tr");
    tr.append(cell(r.id), cell(r.label), cell(t(`floor.${r.kind}`)),
      cell(r.kind === "flat" ? (r.monitored ? t("yes") : t("state.not_monitored")) : "–"));
    return tr;
  }), 4);
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
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.className = "button button-danger";
    revoke.textContent = t("device.revoke");
    revoke.setAttribute("aria-label", `${t("device.revoke")} ${d.id}`);
    revoke.addEventListener("click", () => revokeDevice(d.id));
    const action = document.createElement("td");
    action.append(revoke);
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

function userButton(label, username, onClick, danger = false) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = danger ? "button button-danger" : "button";
  button.textContent = t(label);
  button.setAttribute("aria-label", `${t(label)} ${username}`);
  button.dataset.action = label.replace("user.", "");
  button.addEventListener("click", onClick);
  return button;
}

async function renderUsers() {
  const users = await api.get("/users");
  const me = api.tokenClaims()?.sub;
  fillTable($("users-body"), users.map((u) => {
    const tr = document.createElement("tr");
    tr.dataset.username = u.username;
    const actions = document.createElement("td");
    actions.className = "actions";
    const name = encodeURIComponent(u.username);
    actions.append(userButton("user.passwd", u.username, () => changePassword(u.username)));
    // Not on your own row: disabling or deleting yourself would end this page's login.
    if (u.username !== me) {
      actions.append(u.disabled
        ? userButton("user.enable", u.username, () => changeUser(`/users/${name}/enable`,
          t("user.enabled.done", { name: u.username })))
        : userButton("user.disable", u.username, () => changeUser(`/users/${name}/disable`,
          t("user.disabled.done", { name: u.username }),
          t("user.disable.confirm", { name: u.username })), true),
      userButton("user.delete", u.username, () => changeUser(`/users/${name}`,
        t("user.deleted.done", { name: u.username }),
        t("user.delete.confirm", { name: u.username }), "DELETE"), true));
    }
    tr.append(cell(u.username + (u.username === me ? ` ${t("user.you")}` : "")),
      cell(t(`role.${u.role}`)), cell(u.sites.join(", ") || "–"),
      cell(t(u.disabled ? "user.disabled" : "user.active"), u.disabled ? "presence-offline" : ""),
      actions);
    return tr;
  }), 5);
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

// ---- data --------------------------------------------------------------------------------

async function loadSites() {
  state.sites = await api.get("/sites");
  if (!state.sites.some((s) => s.id === state.site)) state.site = state.sites[0]?.id ?? null;
  renderSites();
}

async function loadRooms() {
  state.rooms = state.site ? await api.get(`/sites/${encodeURIComponent(state.site)}/rooms`) : [];
  renderRooms();
  renderRules();
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
}

async function main() {
  translatePage();
  if (!api.tokenClaims()) {
    api.goToLogin();
    return;
  }
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
    $("credentials").hidden = true;
    await loadRooms();
  });
  document.addEventListener("nattero:language", () => {
    renderSites();
    renderRooms();
    renderRules();
    renderUsers();
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
  bindForm($("room-form"), async (v) => {
    const done = await api.post(`${sitePath()}/rooms`, { id: v.id, kind: v.kind, label: v.label || null });
    await loadRooms();
    return done.message;
  });
  bindForm($("basis-form"), async (v) => {
    const body = { kind: v.kind, reference: v.reference || null,
      valid_from: v.valid_from || null, valid_to: v.valid_to || null };
    const done = await api.post(`${sitePath()}/rooms/${encodeURIComponent(v.room)}/basis`, body);
    await loadRooms();
    return done.message;
  });
  bindForm($("device-form"), async (v) => {
    const creds = await api.post(`${sitePath()}/devices`, { id: v.id, room: v.room, kind: v.kind,
      heartbeat_s: Number(v.heartbeat_s) });
    $("credentials-title").textContent = t("device.credentials", { id: v.id });
    $("cred-username").textContent = creds.username;
    $("cred-client-id").textContent = creds.client_id;
    $("cred-password").textContent = creds.password;
    $("credentials").hidden = false;
    await loadRooms();
    return "";
  });
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
  bindForm($("user-form"), async (v) => {
    await api.post("/users", { username: v.username, password: v.password, role: v.role, sites: v.sites || [] });
    await renderUsers();
    return "";
  });

  await loadSites();
  await Promise.all([loadRooms(), renderUsers()]);
}

main();
