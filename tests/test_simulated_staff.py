"""Simulated night staff answer the calls of a simulation (``nattero simulate --respond``):
stored through the store's own change path at the simulated times, once, and measured by
the report like a real site's answers (issue 13 §5, issue 15)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import httpx
import psycopg

from core.alerts import RuleName
from core.settings import Settings, StackInfo
from nattero.scoring import SIMULATED_STAFF, StoredAlerts, answer_calls
from simulators.ground_truth import Episode, EpisodeKind, ExpectedAlert, GroundTruth
from simulators.responses import plan_answers
from tests.support.api import Account
from tests.support.evaluation import simulate_site
from tests.test_report import embedded_figures


def test_simulated_staff_take_and_resolve_each_open_call_once_and_the_report_measures_it(
        ev_http: httpx.Client, db: psycopg.Connection, migrated: StackInfo,
        make_user: Callable[..., Account],
        headers_for: Callable[[Account], dict[str, str]]) -> None:
    first = date(2026, 8, 20)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        simulated = simulate_site(conn, "solsikken", first, 1)
    site, profile = simulated.id, simulated.profile
    start, end = profile.night_window(first)
    db.execute("DELETE FROM alerts WHERE site = %s", (site,))
    flats = [r.id for r in profile.rooms if r.kind.value == "flat"]
    fall_at, outing_at, quiet_at = (start + timedelta(hours=h) for h in (1, 2, 3))

    def call(room: str, rule: str, severity: str, at: object, called: bool) -> None:
        db.execute(
            "INSERT INTO alerts (site, room, rule, severity, episode_key, status, first_ts, "
            "last_ts, raised_at, called_at) VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, %s, "
            "%s)", (site, room, rule, severity, f"{site}:{room}:{rule}", at, at, at,
                    at if called else None))

    call(flats[0], "bed_exit_not_back", "high", fall_at, True)       # a fall: help given
    call(flats[1], "left_flat", "normal", outing_at, True)           # nothing in the truth
    call(flats[2], "left_flat", "normal", quiet_at, False)           # quiet: nobody called
    truth = GroundTruth()
    truth.add_night(site, first, [Episode(
        site=site, night=first, kind=EpisodeKind.FALL, room=flats[0],
        start=fall_at - timedelta(minutes=10), end=fall_at + timedelta(minutes=30),
        needed_help=True, expected=(ExpectedAlert(RuleName.BED_EXIT_NOT_BACK, flats[0]),))])

    settings = Settings.model_validate({})
    alerts = StoredAlerts(settings)(site, start, end)
    assert {a.severity for a in alerts} == {"high", "normal"} and all(a.id for a in alerts)
    answers = plan_answers(profile, truth, alerts, seed=2)
    assert [a.outcome.value for a in answers] == ["help_given", "false_alarm"]
    store = answer_calls(settings)
    assert store(answers) == 2
    assert store(answers) == 0     # the same nights again: already answered
    rows = db.execute(
        "SELECT room, status, outcome, acknowledged_by, acknowledged_at, resolved_at "
        "FROM alerts WHERE site = %s ORDER BY first_ts", (site,)).fetchall()
    by_id = {a.alert_id: a for a in answers}
    ids = [a.id for a in sorted(alerts, key=lambda a: a.ts)]
    assert [r[1:4] for r in rows] == [
        ("resolved", "help_given", SIMULATED_STAFF), ("resolved", "false_alarm", SIMULATED_STAFF),
        ("open", None, None)]
    for row, alert_id in zip(rows[:2], ids[:2], strict=True):
        assert alert_id is not None
        assert (row[4], row[5]) == (by_id[alert_id].taken_at, by_id[alert_id].resolved_at)
    changes = db.execute("SELECT change FROM alert_changes WHERE alert_id = %s ORDER BY seq",
                         (ids[0],)).fetchall()
    assert [c[0] for c in changes][-2:] == ["acknowledged", "resolved"]

    evaluator = headers_for(make_user("evaluator"))
    figures = embedded_figures(ev_http.get("/api/v1/reports/benefit", headers=evaluator, params={
        "site": site, "from": first.isoformat(), "to": first.isoformat()}).text)
    assert figures["acknowledge"]["count"] == 2
    taken = sorted((by_id[i].taken_at - t).total_seconds()   # type: ignore[index]
                   for i, t in ((ids[0], fall_at), (ids[1], outing_at)))
    assert figures["acknowledge"]["median_s"] == sum(taken) / 2
    assert (figures["calls"], figures["unhandled_calls"], figures["needless_calls"],
            figures["quiet_situations"]) == (2, 0, 1, 1)
