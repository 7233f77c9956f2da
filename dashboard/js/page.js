// The start every page outside the board shares (handover, evaluator, alarm load): the
// language, the log-out button, the login check, and the server's word on who is logged in.

import * as api from "./api.js";
import { ApiError } from "./api.js";
import { t, translatePage, bindLanguageToggle } from "./i18n.js";

/** What went wrong, in the page's language; `forbidden`: the page's own 403 text. */
export function describeError(error, forbidden = t("ev.error.403")) {
  if (!(error instanceof ApiError)) return t("ev.error", { reason: error.message });
  if (error.status === 0) return t("ev.error.0");
  if (error.status === 403) return `${forbidden} (${error.message})`;
  if (error.status === 404) return `${t("ev.error.404")} (${error.message})`;
  if (error.status === 422) return t("ev.invalid", { detail: error.message });
  return t("ev.error", { reason: error.message });
}

/**
 * Translate the page, wire language and log-out, and ask the server who is logged in (its
 * word on the role, not the token's). Null when there is nobody: the login page is on its
 * way, or `showError` was given what went wrong.
 */
export async function startPage(showError, forbidden = undefined) {
  translatePage();
  bindLanguageToggle(document.getElementById("lang"));
  document.getElementById("logout").addEventListener("click", () => api.goToLogin());
  if (!api.tokenClaims()) {
    api.goToLogin();
    return null;
  }
  api.startRenewal();
  try {
    return await api.get("/auth/me");
  } catch (error) {
    if (error.status !== 401) showError(describeError(error, forbidden));
    return null;
  }
}
