// The end-of-shift questionnaire: optional and anonymous. The answer goes to the site the
// board shows; the server stores the night and the answers only, never who sent them.

import * as api from "./api.js";
import { t } from "./i18n.js";

export const QUESTIONS = ["calm", "workload", "trust", "residents_rest"];

/** Build the Likert groups (1-5) into `fieldset` once. */
export function renderQuestions(container) {
  container.replaceChildren();
  for (const question of QUESTIONS) {
    const group = document.createElement("fieldset");
    group.className = "likert";
    const legend = document.createElement("legend");
    legend.dataset.i18n = `shift.${question}`;
    legend.textContent = t(`shift.${question}`);
    group.append(legend);
    for (let score = 1; score <= 5; score += 1) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = question;
      input.value = String(score);
      label.append(input, document.createTextNode(` ${score}`));
      group.append(label);
    }
    container.append(group);
  }
}

/** The answer in the form, or null when nothing was chosen or written. */
export function answerOf(form) {
  const body = {};
  for (const question of QUESTIONS) {
    const chosen = form.querySelector(`input[name="${question}"]:checked`);
    if (chosen) body[question] = Number(chosen.value);
  }
  const comment = form.querySelector("#shift-comment").value.trim();
  if (comment) body.comment = comment;
  return Object.keys(body).length ? body : null;
}

export async function sendAnswer(site, form, status) {
  const body = answerOf(form);
  status.hidden = false;
  if (!body) {
    status.textContent = t("shift.empty");
    status.classList.add("form-error");
    return false;
  }
  try {
    await api.post(`/sites/${encodeURIComponent(site)}/shift-answers`, body);
  } catch (e) {
    status.textContent = t("shift.failed") + (e.message ? ` ${e.message}` : "");
    status.classList.add("form-error");
    return false;
  }
  form.reset();
  status.textContent = t("shift.sent");
  status.classList.remove("form-error");
  return true;
}
