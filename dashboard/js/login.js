// Sign-in: a username and password for a bearer token, then back to where the user was.
// With single sign-on set up, the municipality's account first: the server's callback
// comes back here with a one-time code (or a refusal's reason) in the URL fragment.

import {
  login, pairBoard, enrolledBoard, renewBoardToken, singleSignOn, finishSingleSignOn,
  enrolSecondFactor, ApiError,
} from "./api.js";
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
    const session = await login(username, password, $("totp").value.trim());
    location.replace(destination(session.role));
  } catch (error) {
    // The username stays; only a wrong password is cleared.
    if (error instanceof ApiError && error.status === 429) showError(error.message || t("login.locked"));
    else if (error instanceof ApiError && error.secondFactor === "enrol") await setUpSecondFactor();
    else if (error instanceof ApiError && error.secondFactor === "code") {
      showError(error.message);
      $("totp-field").hidden = false;
      $("totp").value = "";
      $("totp").focus();
    } else if (error instanceof ApiError && error.status === 401) {
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

/** A local admin's second factor: a new secret from the server (the password proves who
 * asks), shown once; the next login with a code from it confirms it. */
async function setUpSecondFactor() {
  $("login-error").hidden = true;
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) {
    showError(t("login.missing"));
    return;
  }
  try {
    const enrolment = await enrolSecondFactor(username, password);
    $("totp-uri").href = enrolment.otpauth_uri;
    $("totp-qr").src = enrolment.qr_code;
    $("totp-secret").textContent = enrolment.secret.replace(/(.{4})/g, "$1 ").trim();
    $("totp-enrolment").hidden = false;
    $("totp-field").hidden = false;
    $("totp-setup").hidden = true;
    notice(t("totp.enrol"));
    $("totp").focus();
  } catch (error) {
    showError(error instanceof ApiError && error.status === 0 ? t("login.unreachable") : error.message);
  }
}

async function pair(event) {
  event.preventDefault();
  $("pair-error").hidden = true;
  const code = $("pair-code").value.trim();
  if (!code) {
    $("pair-error").textContent = t("pair.missing");
    $("pair-error").hidden = false;
    $("pair-code").focus();
    return;
  }
  const button = $("pair-submit");
  button.disabled = true;
  try {
    await pairBoard(code);
    location.replace(destination("staff"));
  } catch (error) {
    $("pair-error").textContent = error instanceof ApiError && error.status === 0
      ? t("login.unreachable") : error.message;
    $("pair-error").hidden = false;
  } finally {
    button.disabled = false;
  }
}

function notice(text) {
  $("login-notice").textContent = text;
  $("login-notice").hidden = false;
}

/** An enrolled board never needs the login page: renew and go back (retry while the
 * server is away; only a revoked board stays here). */
async function resumeBoard() {
  try {
    if (await renewBoardToken()) {
      location.replace(destination("staff"));
      return;
    }
    notice(t("pair.revoked"));
  } catch {
    notice(t("login.unreachable"));
    setTimeout(resumeBoard, 5000);
  }
}

const SSO_REFUSALS = ["no_role", "no_sites", "disabled", "taken", "state", "provider", "claims"];

/** Show the single sign-on button when the installation has it; finish a login the
 * callback handed back (the fragment is cleared at once: it is used only once). */
async function singleSignOnLogin() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("sso") || fragment.has("sso-error")) {
    history.replaceState(null, "", location.pathname + location.search);
  }
  const refused = fragment.get("sso-error");
  if (refused) showError(t(`sso.refused.${SSO_REFUSALS.includes(refused) ? refused : "provider"}`));
  const code = fragment.get("sso");
  if (code) {
    notice(t("login.busy"));
    try {
      const session = await finishSingleSignOn(code);
      location.replace(destination(session.role));
      return;
    } catch (error) {
      $("login-notice").hidden = true;
      showError(error instanceof ApiError && error.status === 0 ? t("login.unreachable") : error.message);
    }
  }
  if (await singleSignOn()) {
    const next = params.get("next");
    $("sso-login").href = `/api/v1/auth/oidc/login${next ? `?next=${encodeURIComponent(next)}` : ""}`;
    $("sso").hidden = false;
  }
}

translatePage();
bindLanguageToggle($("lang"));
singleSignOnLogin();
if (params.get("reason") === "expired") notice(t("login.expired"));
if (params.get("reason") === "revoked") notice(t("pair.revoked"));
$("login-form").addEventListener("submit", submit);
$("totp-setup").addEventListener("click", setUpSecondFactor);
$("pair-form").addEventListener("submit", pair);
$("username").focus();
if (enrolledBoard()) resumeBoard();
