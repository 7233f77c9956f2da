// "Prøv ændringen først" on the admin page and the alarm-load page: what both show of a
// back-test (POST /sites/{site}/backtest): the risk, the summary, and the calls that led to
// help which the change would have missed or delayed. Each page draws its own tables.

import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

/** Show `result`; `moment(iso)` writes a time in the site's zone. */
export function showTryResult(result, moment) {
  $("try-result").hidden = false;
  $("try-risky").hidden = !result.risky;
  $("apply-confirm-field").hidden = !result.risky;
  $("try-summary").textContent = t("try.summary", {
    now: result.current.alerts, proposed: result.proposed.alerts,
    nowCalls: result.current.calls, proposedCalls: result.proposed.calls,
    gone: result.needless_gone.length, nights: result.nights });
  const help = [
    ...result.help_given.missed.map((f) => t("try.missed",
      { room: f.room, rule: t(`rule.${f.rule}`), at: moment(f.first_ts) })),
    ...result.help_given.delayed.map((f) => t("try.delayed",
      { room: f.room, rule: t(`rule.${f.rule}`), at: moment(f.first_ts),
        minutes: Math.round(f.delay_s / 60) }))];
  $("try-help").replaceChildren(...help.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}
