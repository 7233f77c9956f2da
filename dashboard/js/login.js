// Sign-in: a username and password for a bearer token, then back to where the user was.

import { login, ApiError } from "./api.js";
import { t, translatePage, bindLanguageToggle } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const EVALUATOR_PAGE = "/evaluator.html";

function destination(role) {
  const next = params.get("next") || "/";
  // Only ever a path on this server: never an open redirect.
  const path = next.startsWith("/") && !next.startsWith("//") ? next : "/";
  // Evaluators never land on the live board (or any other page): theirs is the evaluator page.
  if (role === "evaluator" && !path.startsWith(EVALUATOR_PAGE)) return EVALUATOR_PAGE;
  return path;
}

function showError(text) {
  $("login-error").textContent = text;
  $("login-error").hidden = false;
}

async function submit(event) {
  event.preventDefault();
  $("login-error").hidden = true;
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) {
    showError(t("login.missing"));
    (username ? $("password") : $("username")).focus();
    return;
  }
  const button = $("login-submit");
  button.disabled = true;
  button.textContent = t("login.busy");
  try {
    const session = await login(username, password);
    location.replace(destination(session.role));
  } catch (error) {
    // The username stays; only a wrong password is cleared.
    if (error instanceof ApiError && error.status === 429) showError(t("login.locked"));
    else if (error instanceof ApiError && error.status === 401) {
      showError(t("login.failed"));
      $("password").value = "";
      $("password").focus();
    } else if (error instanceof ApiError && error.status === 0) showError(t("login.unreachable"));
    else showError(error.message);
  } finally {
    button.disabled = false;
    button.textContent = t("login.submit");
  }
}

translatePage();
bindLanguageToggle($("lang"));
if (params.get("reason") === "expired") {
  $("login-notice").textContent = t("login.expired");
  $("login-notice").hidden = false;
}
$("login-form").addEventListener("submit", submit);
$("username").focus();
