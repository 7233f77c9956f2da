// The REST client of the pages: bearer token, JSON in and out, errors a person can read.
// It never retries on its own; the caller decides whether a failure is worth a banner.

const TOKEN_KEY = "nattero.token";
export const API = "/api/v1";

export class ApiError extends Error {
  /** `status` 0 means the server could not be reached at all. */
  constructor(status, message, detail = null) {
    super(message);
    this.status = status;
    this.detail = detail;
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
  const next = encodeURIComponent(location.pathname + location.search);
  location.replace(`/login.html?next=${next}${reason ? `&reason=${reason}` : ""}`);
}

export async function login(username, password) {
  const body = new URLSearchParams({ username, password });
  let response;
  try {
    response = await fetch(`${API}/auth/token`, { method: "POST", body });
  } catch {
    throw new ApiError(0, "unreachable");
  }
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, describe(payload, response), payload.errors);
  localStorage.setItem(TOKEN_KEY, payload.access_token);
  return payload;
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

export async function request(method, path, body) {
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
    goToLogin("expired");
    throw new ApiError(401, "signed out");
  }
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, describe(payload, response), payload?.errors ?? payload?.detail);
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
