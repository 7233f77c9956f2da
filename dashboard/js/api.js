// The REST client of the pages: bearer token, JSON in and out, errors a person can read.
// It never retries on its own; the caller decides whether a failure is worth a banner.
//
// Tokens are short and renewed at half-life by the page (`startRenewal`): a personal login
// until its session limit (POST /auth/refresh), an enrolled board (a tablet paired by an
// admin, its board secret and device id in localStorage) for as long as it is not revoked
// (POST /auth/board/refresh, also whenever the server says the token ran out), so a board
// never lands on the login page mid-shift. Personal logins keep a login key per account:
// it tells the lockout this tablet from a stranger's.

const TOKEN_KEY = "nattero.token";
const BOARD_KEY = "nattero.board";
const DEVICE_KEY = "nattero.device";
const LOGIN_KEYS = "nattero.loginKeys";
const RENEW_CHECK_MS = 60_000;
export const API = "/api/v1";

export class ApiError extends Error {
  /** `status` 0 means the server could not be reached at all. */
  constructor(status, message, detail = null, payload = null) {
    super(message);
    this.status = status;
    this.detail = detail;
    this.payload = payload; // the whole error answer (e.g. an import's `problems`)
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

/** What the token says about its holder (display only; the server decides access). */
export function tokenClaims() {
  const raw = token();
  if (!raw) return null;
  try {
    const part = raw.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    if (claims.exp && claims.exp * 1000 < Date.now()) return null;
    return claims;
  } catch {
    return null;
  }
}

export function goToLogin(reason = "") {
  forgetToken();
  stopRenewal();
  const next = encodeURIComponent(location.pathname + location.search);
  location.replace(`/login.html?next=${next}${reason ? `&reason=${reason}` : ""}`);
}

function loginKeys() {
  try {
    return JSON.parse(localStorage.getItem(LOGIN_KEYS)) || {};
  } catch {
    return {};
  }
}

/** POST a login form (username, password, this device's login key); the answer's JSON.
 * A refusal's `secondFactor` is what the server asks of a local admin: "code" or "enrol". */
async function postLoginForm(path, username, password, extra = {}) {
  const body = new URLSearchParams({ username, password, ...extra });
  const key = loginKeys()[username.trim().toLowerCase()];
  if (key) body.set("client_key", key);
  let response;
  try {
    response = await fetch(`${API}${path}`, { method: "POST", body });
  } catch {
    throw new ApiError(0, "unreachable");
  }
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new ApiError(response.status, describe(payload, response), payload.errors);
    error.secondFactor = response.headers.get("X-Nattero-Second-Factor");
    throw error;
  }
  return payload;
}

/** A local admin's new second-factor secret ({secret, otpauth_uri}), shown once. */
export async function enrolSecondFactor(username, password) {
  return postLoginForm("/auth/totp/enrol", username, password);
}

export async function login(username, password, totp = "") {
  const name = username.trim().toLowerCase();
  const payload = await postLoginForm("/auth/token", username, password, totp ? { totp } : {});
  keepToken(payload);
  if (payload.client_key) {
    localStorage.setItem(LOGIN_KEYS, JSON.stringify({ ...loginKeys(), [name]: payload.client_key }));
  }
  return payload;
}

// ---- single sign-on (the municipality's directory) -------------------------------------

/** Whether this installation offers single sign-on (the login page's button). */
export async function singleSignOn() {
  try {
    const response = await fetch(`${API}/auth/oidc/config`);
    return response.ok && (await response.json()).enabled === true;
  } catch {
    return false;
  }
}

/** The one-time code the single sign-on callback put in the URL fragment, for a token. */
export async function finishSingleSignOn(code) {
  const payload = await postJson("/auth/oidc/token", { code });
  keepToken(payload);
  return payload;
}

// ---- enrolled boards ----------------------------------------------------------------------

/** This tablet's own random id (made once; a board credential is bound to it). */
export function deviceId() {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id) {
    // getRandomValues works on plain http too (randomUUID needs a secure context).
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

/** The enrolled board of this tablet ({id, site, label, secret}), or null. */
export function enrolledBoard() {
  try {
    const board = JSON.parse(localStorage.getItem(BOARD_KEY));
    return board && board.secret ? board : null;
  } catch {
    return null;
  }
}

export function forgetBoard() {
  localStorage.removeItem(BOARD_KEY);
}

function keepToken(payload) {
  localStorage.setItem(TOKEN_KEY, payload.access_token);
  localStorage.setItem("nattero.token.renewAt",
    String(Date.now() + (payload.expires_in * 1000) / 2));
}

async function postJson(path, body) {
  let response;
  try {
    response = await fetch(`${API}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "unreachable");
  }
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, describe(payload, response), payload.errors);
  return payload;
}

/** Enrol this tablet as a board with an admin's pairing code. */
export async function pairBoard(code) {
  const payload = await postJson("/auth/board/pair", { code, device: deviceId() });
  localStorage.setItem(BOARD_KEY, JSON.stringify({
    id: payload.board_id, site: payload.site, label: payload.label, secret: payload.board_secret,
  }));
  keepToken(payload);
  return payload;
}

let renewing = null;

/**
 * A fresh token for the enrolled board. Resolves true when renewed, false when this tablet
 * is no board (or no longer: revoked, so its credential is forgotten); throws ApiError(0)
 * when the server cannot be reached (the board keeps its credential and tries again).
 */
export function renewBoardToken() {
  const board = enrolledBoard();
  if (!board) return Promise.resolve(false);
  if (!renewing) {
    renewing = postJson("/auth/board/refresh", { board_secret: board.secret, device: deviceId() })
      .then((payload) => { keepToken(payload); return true; })
      .catch((error) => {
        if (error.status === 401) { forgetBoard(); return false; }
        throw error;
      })
      .finally(() => { renewing = null; });
  }
  return renewing;
}

async function renewPersonalToken() {
  let response;
  try {
    response = await fetch(`${API}/auth/refresh`, {
      method: "POST", headers: { Authorization: `Bearer ${token()}`, Accept: "application/json" },
    });
  } catch {
    throw new ApiError(0, "unreachable");
  }
  if (response.status === 401) return false;
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, describe(payload, response));
  keepToken(payload);
  return true;
}

async function renewIfDue() {
  const due = Number(localStorage.getItem("nattero.token.renewAt") || 0);
  if (!token() || Date.now() < due) return;
  try {
    if (enrolledBoard()) {
      if (!(await renewBoardToken())) goToLogin("revoked");
    } else if (!(await renewPersonalToken())) {
      goToLogin("expired"); // the login's session limit: log in again
    }
  } catch (error) {
    console.warn("nattero: cannot renew the token yet", error);
  }
}

let renewal = null;

/** Keep this page's token fresh (called by every page that uses one, after its check). */
export function startRenewal() {
  if (renewal || !token()) return;
  renewal = setInterval(renewIfDue, RENEW_CHECK_MS);
  renewIfDue();
}

function stopRenewal() {
  clearInterval(renewal);
  renewal = null;
}

function describe(payload, response) {
  const detail = payload && payload.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{loc: ["body", "field"], msg: "..."}]
    return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "?"}: ${d.msg}`).join("; ");
  }
  return `${response.status} ${response.statusText}`;
}

/** Field name → message, from a 422's `errors` list (for showing next to inputs). */
export function fieldErrors(error) {
  const out = {};
  if (error instanceof ApiError && Array.isArray(error.detail)) {
    for (const d of error.detail) {
      const loc = (d.loc || []).filter((part) => part !== "body" && part !== "query" && part !== "path");
      if (loc.length && !(String(loc[0]) in out)) out[String(loc[0])] = d.msg;
    }
  }
  return out;
}

export async function request(method, path, body, retried = false) {
  const headers = { Accept: "application/json" };
  const raw = token();
  if (raw) headers.Authorization = `Bearer ${raw}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`${API}${path}`, init);
  } catch {
    throw new ApiError(0, "unreachable");
  }
  if (response.status === 401) {
    // A board whose token ran out (a tablet asleep past it) renews and asks again.
    const wasBoard = enrolledBoard() !== null;
    if (wasBoard && !retried && (await renewBoardToken().catch(() => false))) {
      return request(method, path, body, true);
    }
    goToLogin(wasBoard && !enrolledBoard() ? "revoked" : "expired");
    throw new ApiError(401, "signed out");
  }
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, describe(payload, response), payload?.errors ?? payload?.detail,
      payload);
  }
  return payload;
}

/**
 * GET a document (HTML, PDF, an export file) with the bearer token; returns the Response.
 * Errors are the same ApiErrors as `request` gives, from the server's JSON error body.
 */
export async function fetchDocument(path, accept = "*/*") {
  const headers = { Accept: accept };
  const raw = token();
  if (raw) headers.Authorization = `Bearer ${raw}`;
  let response;
  try {
    response = await fetch(`${API}${path}`, { headers, cache: "no-store" });
  } catch {
    throw new ApiError(0, "unreachable");
  }
  if (response.status === 401) {
    goToLogin("expired");
    throw new ApiError(401, "signed out");
  }
  if (!response.ok) {
    const payload = await response.json().catch(() => null);
    throw new ApiError(response.status, describe(payload, response), payload?.detail);
  }
  return response;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const put = (path, body) => request("PUT", path, body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);

/** The live stream's URL. It never carries the token (URLs end up in logs): the stream
 * sends `authMessage()` as its first message instead. */
export function streamUrl(since) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams();
  if (since !== null && since !== undefined) params.set("since", String(since));
  const query = params.toString();
  return `${scheme}//${location.host}${API}/alerts/stream${query ? `?${query}` : ""}`;
}

/** The stream's first message: the bearer token, in the socket and not in the URL. */
export function authMessage() {
  return JSON.stringify({ type: "auth", token: token() || "" });
}
