"""Rule back-testing for admins: try a change on stored nights, then apply it.

``POST /sites/{site}/backtest`` replays the period's stored events with the current rules
and with the proposed ones (``backtest``, in memory: nothing is written to the alerts,
nothing announced) and answers the comparison. With ``apply`` it also applies the proposal
(``ingest.rule_settings``, audited with who and why) in one transaction, unless the
back-test found it risky (it would have missed or delayed an alert that led to help) and
``confirm_risky`` is not given: then 409, nothing applied.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, status
from pydantic import BaseModel, Field, model_validator

from api.deps import ConnDep, CurrentAdmin, existing_site
from api.errors import Invalid, Refusal, responses
from api.models import TEXT_PATTERN, SiteId
from api.routes.admin import RuleSettingIn
from backtest import BacktestError, RuleChange, run_backtest
from core.i18n import mark
from ingest.audit import audit
from ingest.rule_settings import upsert_rule_setting

router = APIRouter(tags=["admin"])


class BacktestIn(BaseModel):
    from_: date = Field(alias="from", description="first night (local date)")
    to: date = Field(description="last night, inclusive")
    changes: list[RuleSettingIn] = Field(min_length=1, max_length=50)
    apply: bool = Field(False, description="apply the changes after the back-test")
    confirm_risky: bool = Field(
        False, description="apply even though the back-test says it would have missed or "
        "delayed an alert that led to help")
    reason: str | None = Field(None, max_length=500, pattern=TEXT_PATTERN,
                               description="why (required to apply; audited)")

    @model_validator(mode="after")
    def _reason_to_apply(self) -> BacktestIn:
        if self.apply and not (self.reason or "").strip():
            raise Invalid(mark("give a reason to apply a rule change (it is audited)"))
        return self


def _change(body: RuleSettingIn) -> RuleChange:
    return RuleChange(body.rule, body.room, body.enabled, body.minutes, body.severity)


@router.post("/sites/{site}/backtest", responses=responses(400, 401, 403, 404, 409, 422, 503))
def backtest(site: SiteId, body: Annotated[BacktestIn, Body()], admin: CurrentAdmin,
             conn: ConnDep) -> dict[str, Any]:
    """Back-test rule changes on the site's stored nights; ``apply`` to apply them."""
    existing_site(conn, site)
    try:
        changes = [_change(c) for c in body.changes]
        test = run_backtest(conn, site, body.from_, body.to, changes)
    except BacktestError as exc:
        raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.message, exc.values) from None
    result = test.to_json()
    result["applied"] = False
    if not body.apply:
        return result
    if test.risky and not body.confirm_risky:
        raise Refusal(status.HTTP_409_CONFLICT,
                      "this change would have missed or delayed {n} alert(s) that led to help "
                      "in the nights tried; confirm that it should be applied anyway",
                      n=sum(f.verdict in ("missed", "delayed") for f in test.help_given))
    with conn.transaction():
        for change in body.changes:
            upsert_rule_setting(conn, site, change.room, change.rule.value, change.enabled,
                                change.minutes,
                                change.severity.value if change.severity else None,
                                admin.username)
            audit(conn, admin.username, "rules.set", site, change.room or site,
                  {**change.model_dump(mode="json"), "reason": body.reason,
                   "backtest": {"from": result["from"], "to": result["to"],
                                "risky": test.risky, "confirmed": body.confirm_risky,
                                "alerts_before": result["current"]["alerts"],
                                "alerts_after": result["proposed"]["alerts"]}})
    result["applied"] = True
    return result
