"""Rule back-testing against live runs: the same events through the same engine give the
same alerts (issue 14).

Two copies of a simulated site play the same planned nights into the real store through
the event writer and the rules runtime (the pipeline behind the broker and the gateway),
one with stricter rule settings, one with looser: a week of havnely (the 40-room shelter)
for the equality, two nights of egely for the rest. A back-test of one copy with the
other's settings must give exactly the alerts the other copy's live run gave, and with its
own settings exactly its own. A change that would have delayed an alert that led to help is
flagged, and refused by the API without confirmation; a back-test writes no alert and
sends no NOTIFY; staff cannot reach it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, expect

from backtest import Backtest, RuleChange, run_backtest
from backtest.sandbox import SandboxAlert
from core.alerts import Outcome, RuleName
from core.events import Event, EventKind
from core.settings import StackInfo, get_settings
from ingest import alerts as stored_alerts
from ingest.alerts import NOTIFY_CHANNEL
from ingest.rule_settings import upsert_rule_setting
from ingest.writer import Batch, EventWriter
from provisioning.layout import SiteLayout, apply_layout
from rules.runtime import RulesRuntime
from simulators.command import plan_run
from simulators.devices import sort_deliveries
from simulators.plan import EventDelivery
from simulators.profile import load_profile
from simulators.provisioner import layout
from tests.support.api import Account
from tests.support.board import ApiProcess, axe_violations, log_in, screenshot
from tests.support.cli import nattero_cli
from tests.support.store import unique

pytestmark = pytest.mark.slow

PROFILE = "egely"
FIRST = date(2026, 11, 23)
NIGHTS = 2
LAST = FIRST + timedelta(days=NIGHTS - 1)
SEED = 3
WEEK_PROFILE = "havnely"  # the test bed: a simulated week of the shelter
WEEK = 7
WEEK_LAST = FIRST + timedelta(days=WEEK - 1)
STRICT = [RuleChange(RuleName.LEFT_FLAT, minutes=8), RuleChange(RuleName.COMMON_MOTION, minutes=4)]
LOOSE = [RuleChange(RuleName.LEFT_FLAT, minutes=30),
         RuleChange(RuleName.COMMON_MOTION, minutes=25)]
Alert = tuple[str, str, datetime, datetime | None]


@dataclass(frozen=True)
class Played:
    strict: str  # site ids
    loose: str


def _set(conn: psycopg.Connection, site: str, changes: list[RuleChange]) -> None:
    for change in changes:
        upsert_rule_setting(conn, site, change.room, change.rule.value, change.enabled,
                            change.minutes, None, "test")


def _play(dsn: str, site: str, changes: list[RuleChange], profile: str = PROFILE,
          nights: int = NIGHTS) -> None:
    """The planned nights of the profile, renamed to ``site``, through the writer with the
    rules runtime's hook (events arrive now, as a simulation's do)."""
    document = layout(load_profile(profile))
    document["site"] = site
    apply_layout(get_settings(), SiteLayout.model_validate(document), actor="test")
    with psycopg.connect(dsn, autocommit=True) as conn:
        _set(conn, site, changes)
    plans = plan_run([load_profile(profile)], [FIRST + timedelta(days=n) for n in range(nights)],
                     SEED)
    deliveries = [d for d in sort_deliveries([d for p in plans for d in p.deliveries])
                  if isinstance(d, EventDelivery)]
    rules = RulesRuntime(dsn, sites=[site], budget_s=60.0)
    rules.load()
    writer = EventWriter(dsn, hooks=[rules.on_batch])
    try:
        for at in range(0, len(deliveries), 100):
            writer.write(Batch(events=[
                (Event(site, d.device, d.payload["id"],
                       datetime.fromisoformat(d.payload["ts"].replace("Z", "+00:00")),
                       EventKind(d.payload["kind"]), d.payload.get("battery")),
                 datetime.now(UTC)) for d in deliveries[at:at + 100]]))
        rules.tick()
    finally:
        writer.close()
        rules.stop()


@pytest.fixture(scope="module")
def played(migrated: StackInfo) -> Played:
    sites = Played(unique("bt-strict"), unique("bt-loose"))
    _play(migrated.database_url, sites.strict, STRICT)
    _play(migrated.database_url, sites.loose, LOOSE)
    return sites


@pytest.fixture(scope="module")
def week(migrated: StackInfo) -> Played:
    """A simulated week of havnely, played live once with each setting."""
    sites = Played(unique("bt-week-strict"), unique("bt-week-loose"))
    _play(migrated.database_url, sites.strict, STRICT, WEEK_PROFILE, WEEK)
    _play(migrated.database_url, sites.loose, LOOSE, WEEK_PROFILE, WEEK)
    return sites


def live(db: psycopg.Connection, site: str) -> list[Alert]:
    return sorted((rule, room, first_ts, called_at) for rule, room, first_ts, called_at
                  in db.execute("SELECT rule, room, first_ts, called_at FROM alerts "
                                "WHERE site = %s", (site,)).fetchall())


def replayed(alerts: list[SandboxAlert]) -> list[Alert]:
    return sorted((str(a.rule), a.room, a.first_ts, a.called_at) for a in alerts)


def calls(alerts: list[Alert]) -> int:
    return sum(1 for *_, called_at in alerts if called_at is not None)


def per_night(test: Backtest, alerts: list[Alert]) -> Counter[tuple[str, str, str]]:
    return Counter((test.night_of(first).isoformat(), rule, room)
                   for rule, room, first, _ in alerts)


def _cells(test: Backtest, side: str) -> Counter[tuple[str, str, str]]:
    return Counter({(c["night"], c["rule"], c["room"]): c[side]
                    for c in test.to_json()["alerts"] if c[side]})


def test_a_looser_setting_backtested_gives_the_alerts_of_a_live_run_with_it(
        week: Played, db: psycopg.Connection) -> None:
    test = run_backtest(db, week.strict, FIRST, WEEK_LAST, LOOSE)
    strict, loose = live(db, week.strict), live(db, week.loose)
    assert strict != loose  # the settings make a difference on these nights
    assert replayed(test.current) == strict
    assert replayed(test.proposed) == loose
    assert _cells(test, "current") == per_night(test, strict)
    assert _cells(test, "proposed") == per_night(test, loose)
    assert test.to_json()["nights"] == WEEK
    print({"strict": len(strict), "loose": len(loose), "calls_strict": calls(strict),
           "calls_loose": calls(loose), "seconds": round(test.seconds, 2)})


def test_a_stricter_setting_backtested_gives_the_alerts_of_a_live_run_with_it(
        week: Played, db: psycopg.Connection) -> None:
    test = run_backtest(db, week.loose, FIRST, WEEK_LAST, STRICT)
    assert replayed(test.current) == live(db, week.loose)
    assert replayed(test.proposed) == live(db, week.strict)
    print({"loose": len(test.current), "strict": len(test.proposed),
           "calls_loose": calls(replayed(test.current)),
           "calls_strict": calls(replayed(test.proposed)), "seconds": round(test.seconds, 2)})


def _help_given_on_an_escalated_outing(db: psycopg.Connection, site: str) -> int:
    """Staff found an outing that became a call when it overran: they helped."""
    row = db.execute("SELECT id FROM alerts WHERE site = %s AND rule = 'left_flat' "
                     "AND called_at > first_ts AND status <> 'resolved' "
                     "ORDER BY first_ts LIMIT 1", (site,)).fetchone()
    assert row is not None, "no escalated outing on these nights: choose another seed"
    with db.transaction():
        stored_alerts.resolve(db, int(row[0]), "test", Outcome.HELP_GIVEN)
    return int(row[0])


def test_a_change_that_would_delay_or_miss_an_alert_that_led_to_help_is_risky(
        played: Played, db: psycopg.Connection) -> None:
    helped = _help_given_on_an_escalated_outing(db, played.strict)
    looser = run_backtest(db, played.strict, FIRST, LAST, LOOSE)
    assert looser.risky and looser.to_json()["risky"] is True
    flagged = {f.alert_id: f for f in looser.help_given if f.verdict in ("missed", "delayed")}
    assert helped in flagged
    finding = flagged[helped]
    if finding.verdict == "delayed":  # 8 -> 30 minutes: called 22 minutes later
        assert finding.delay_s == 22 * 60
    stricter = run_backtest(db, played.strict, FIRST, LAST,
                            [RuleChange(RuleName.LEFT_FLAT, minutes=5)])
    assert not stricter.risky
    assert {f.alert_id: f.verdict for f in stricter.help_given}[helped] == "kept"


def test_a_backtest_writes_no_alert_and_sends_no_notify(
        played: Played, migrated: StackInfo, db: psycopg.Connection) -> None:
    def counts() -> tuple[object, ...]:
        row = db.execute(
            "SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM alert_changes), "
            "(SELECT count(*) FROM alert_triggers), (SELECT coalesce(max(seq), 0) FROM alerts), "
            "(SELECT count(*) FROM rule_settings WHERE site = %s)", (played.strict,)).fetchone()
        assert row is not None
        return tuple(row)

    before = counts()
    with psycopg.connect(migrated.database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        run_backtest(db, played.strict, FIRST, LAST, LOOSE)
        devices = run_backtest(db, played.strict, FIRST, LAST,
                               [RuleChange(RuleName.SENSOR_OFFLINE, minutes=30)])
        heard = [n for n in listener.notifies(timeout=1.0)
                 if played.strict in n.payload]
    assert heard == []
    assert counts() == before
    # A change of a device rule replays every event, heartbeats included: the same alerts
    # as live too, sensor-offline ones among them.
    assert replayed(devices.current) == live(db, played.strict)
    assert any(a.rule is RuleName.SENSOR_OFFLINE for a in devices.current)


def test_the_command_line_prints_the_comparison_and_flags_a_risky_change(
        played: Played, db: psycopg.Connection) -> None:
    _help_given_on_an_escalated_outing(db, played.strict)
    args = ("backtest", played.strict, "--from", FIRST.isoformat(), "--to", LAST.isoformat(),
            "--set", "left_flat.minutes=30", "--set", "common_motion.minutes=25")
    as_json = nattero_cli(*args, "--json")
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["risky"] is True and result["nights"] == NIGHTS
    assert result["current"]["alerts"] == len(live(db, played.strict))
    assert result["proposed"]["alerts"] == len(live(db, played.loose))
    table = nattero_cli(*args)
    assert table.returncode == 0, table.stderr
    assert "Alarmer pr. nat" in table.stdout and "RISIKABEL" in table.stdout  # Danish first
    wrong = nattero_cli("backtest", played.strict, "--from", FIRST.isoformat(), "--to",
                        LAST.isoformat(), "--set", "left_flat.hours=3")
    assert wrong.returncode == 1 and "set enabled, minutes or severity" in wrong.stderr


@pytest.fixture
def admin_headers(played: Played, make_user: Callable[..., Account],
                  headers_for: Callable[[Account], dict[str, str]]) -> dict[str, str]:
    return headers_for(make_user("admin"))


@pytest.fixture
def restore_rules(played: Played, db: psycopg.Connection) -> Iterator[None]:
    yield
    with db.transaction():
        _set(db, played.strict, STRICT)


def test_staff_cannot_backtest(played: Played, http: httpx.Client,
                               make_user: Callable[..., Account],
                               headers_for: Callable[[Account], dict[str, str]]) -> None:
    staff = headers_for(make_user("staff", played.strict))
    response = http.post(f"/api/v1/sites/{played.strict}/backtest", headers=staff, json={
        "from": FIRST.isoformat(), "to": LAST.isoformat(),
        "changes": [{"rule": "left_flat", "minutes": 30}]})
    assert response.status_code == 403


def test_a_risky_change_is_applied_only_with_explicit_confirmation(
        played: Played, db: psycopg.Connection, http: httpx.Client,
        admin_headers: dict[str, str], restore_rules: None) -> None:
    _help_given_on_an_escalated_outing(db, played.strict)
    url = f"/api/v1/sites/{played.strict}/backtest"
    body = {"from": FIRST.isoformat(), "to": LAST.isoformat(),
            "changes": [{"rule": "left_flat", "minutes": 30}]}
    tried = http.post(url, headers=admin_headers, json=body, timeout=60)
    assert tried.status_code == 200, tried.text
    assert tried.json()["risky"] is True and tried.json()["applied"] is False

    def left_flat_minutes() -> object:
        row = db.execute("SELECT minutes FROM rule_settings WHERE site = %s AND room IS NULL "
                         "AND rule = 'left_flat'", (played.strict,)).fetchone()
        return None if row is None else row[0]

    refused = http.post(url, headers=admin_headers, timeout=60,
                        json={**body, "apply": True, "reason": "færre unødige kald"})
    assert refused.status_code == 409
    assert "confirm" in refused.json()["detail"]
    assert left_flat_minutes() == 8
    danish = http.post(url, headers={**admin_headers, "Accept-Language": "da"}, timeout=60,
                       json={**body, "apply": True, "reason": "færre unødige kald"})
    assert danish.status_code == 409 and "bekræft" in danish.json()["detail"]

    applied = http.post(url, headers=admin_headers, timeout=60,
                        json={**body, "apply": True, "confirm_risky": True,
                              "reason": "færre unødige kald"})
    assert applied.status_code == 200, applied.text
    assert applied.json()["applied"] is True
    assert left_flat_minutes() == 30
    audit = db.execute("SELECT actor, detail FROM audit_log WHERE site = %s AND "
                       "action = 'rules.set' ORDER BY id DESC LIMIT 1",
                       (played.strict,)).fetchone()
    assert audit is not None and audit[1]["reason"] == "færre unødige kald"
    assert audit[1]["backtest"]["risky"] is True and audit[1]["backtest"]["confirmed"] is True


def apply_risky_change(page: Page,
                       before_confirming: Callable[[], bool] = lambda: True) -> None:
    """Apply the tried change with a reason: refused until the risk is confirmed
    (``before_confirming`` checks the store in between), then taken into use."""
    page.fill("#apply-reason", "færre unødige kald om natten")
    page.click("#apply-form [type=submit]")  # risky, not confirmed: refused
    expect(page.locator("#apply-form .form-error")).to_contain_text("bekræft")
    assert before_confirming(), "a risky change was stored without its confirmation"
    page.check("#apply-confirm")
    page.click("#apply-form [type=submit]")
    expect(page.locator("#apply-form .form-ok")).to_contain_text("taget i brug")


def test_a_manager_tries_a_change_on_the_admin_page_sees_what_it_would_miss_and_applies_it(
        played: Played, db: psycopg.Connection, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page],
        restore_rules: None) -> None:
    _help_given_on_an_escalated_outing(db, played.strict)
    server = api_process()
    page = open_page()  # tablet width, Danish
    log_in(page, server, make_user("admin"), next_path="/admin.html")
    page.select_option("#admin-site", played.strict)
    page.click("#tab-rules")
    page.select_option("#rule-rule", "left_flat")
    page.fill("#rule-minutes", "30")
    page.fill("#try-from", FIRST.isoformat())
    page.fill("#try-to", LAST.isoformat())
    page.click("#try-form [type=submit]")
    expect(page.locator("#try-result")).to_be_visible(timeout=60_000)
    expect(page.locator("#try-risky")).to_be_visible()
    expect(page.locator("#try-risky")).to_contain_text("overset eller forsinket")
    expect(page.locator("#try-nights tr")).to_have_count(NIGHTS)
    expect(page.locator("#try-help li").first).to_contain_text("rum")
    screenshot(page, "admin-try-a-change")
    violations = axe_violations(page)
    assert not violations, violations

    apply_risky_change(page)
    row = db.execute("SELECT minutes, updated_by FROM rule_settings WHERE site = %s AND "
                     "room IS NULL AND rule = 'left_flat'", (played.strict,)).fetchone()
    assert row is not None and row[0] == 30


def test_on_the_alarm_load_page_a_change_that_would_miss_help_is_flagged_and_needs_confirming(
        played: Played, db: psycopg.Connection, api_process: Callable[..., ApiProcess],
        make_user: Callable[..., Account], open_page: Callable[..., Page],
        restore_rules: None) -> None:
    _help_given_on_an_escalated_outing(db, played.strict)
    server = api_process()
    page = open_page()  # tablet width, Danish
    log_in(page, server, make_user("admin"), next_path="/alarmload.html")
    page.goto(f"{server.url}/alarmload.html?site={played.strict}&to={LAST.isoformat()}")
    expect(page.locator("#load-view")).to_be_visible()
    page.select_option("#try-rule", "left_flat")
    page.fill("#try-minutes", "30")
    page.click("#try-form [type=submit]")
    expect(page.locator("#try-result")).to_be_visible(timeout=60_000)
    expect(page.locator("#try-risky")).to_be_visible()
    expect(page.locator("#try-risky")).to_contain_text("overset eller forsinket")
    expect(page.locator("#try-help li").first).to_contain_text("rum")
    expect(page.locator("#apply-confirm-field")).to_be_visible()
    violations = axe_violations(page)
    assert not violations, violations

    def left_flat_minutes() -> object:
        row = db.execute("SELECT minutes FROM rule_settings WHERE site = %s AND room IS NULL "
                         "AND rule = 'left_flat'", (played.strict,)).fetchone()
        return None if row is None else row[0]

    apply_risky_change(page, before_confirming=lambda: left_flat_minutes() == 8)
    assert left_flat_minutes() == 30
    audit = db.execute("SELECT detail FROM audit_log WHERE site = %s AND action = 'rules.set' "
                       "ORDER BY id DESC LIMIT 1", (played.strict,)).fetchone()
    assert audit is not None and audit[0]["backtest"]["confirmed"] is True
