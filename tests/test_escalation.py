"""Escalation to people against a real mail server: an SMTP server (aiosmtpd) started in the
test takes what Nattero sends, as the care home's mail server or SMS gateway would. The
watch runs with a clock the test moves (never slept on) for the chain, and inside the real
API for the roster routes and the "no board connected" watch."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from api.channels import EmailChannel, PushChannel
from api.db import open_pool
from api.escalation import EscalationWatch, nights_around
from api.push import PushSender
from core.events import RoomKind
from core.settings import Settings, StackInfo, get_settings
from ingest import roster
from tests.support.api import PASSWORD, Account, ApiServer, bearer, free_port
from tests.support.store import unique
from tests.support.waiting import wait_until
from tests.test_push import Browser, PushEndpoint, push_endpoint  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


@dataclass
class Mail:
    to: list[str]
    message: Message
    at: float  # time.time() of arrival

    @property
    def subject(self) -> str:
        return str(make_header(decode_header(self.message["Subject"])))

    @property
    def body(self) -> str:
        part = self.message.get_payload(decode=True)
        assert isinstance(part, bytes)
        return part.decode()


@dataclass
class MailServer:
    """A real SMTP server; ``refusals`` lists the answers to give to DATA in turn (then
    250), e.g. ``"451 4.3.0 try again later"``."""

    controller: Controller
    received: list[Mail] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    tries: int = 0

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.received if address in m.to]

    def wait_for(self, address: str, count: int = 1, timeout: float = 20) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while len(self.to(address)) < count:
            assert time.monotonic() < deadline, (
                f"{count} mail(s) to {address} expected; got {len(self.to(address))}")
            time.sleep(0.05)
        return self.to(address)


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server: MailServer

    class Handler:
        async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
            server.tries += 1
            if server.refusals:
                return server.refusals.pop(0)
            content = envelope.content
            assert isinstance(content, bytes)
            server.received.append(Mail(list(envelope.rcpt_tos), message_from_bytes(content),
                                        time.time()))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    server = MailServer(controller)
    yield server
    controller.stop()


def night_site(name: str) -> str:
    """A site whose night window (UTC) contains now, with a flat."""
    import provisioning

    now = datetime.now(UTC)
    night = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=3)):%H:%M}"
    site_id = unique("es")
    provisioning.add_site(get_settings(), site_id, name, tz="UTC", night=night)
    provisioning.add_room(get_settings(), site_id, "f1", RoomKind.FLAT, "Lejlighed 1")
    return site_id


def tonight(db: psycopg.Connection, site: str) -> date:
    tz, start, end = db.execute("SELECT tz, night_start::text, night_end::text FROM sites "
                                "WHERE id = %s", (site,)).fetchone() or ("", "", "")
    return nights_around(datetime.now(UTC), tz, f"{start[:5]}-{end[:5]}")[0]


@dataclass(frozen=True)
class Night:
    site: str
    duty: Account
    second: Account
    coordinator: Account

    def email(self, account: Account) -> str:
        return f"{account.username}@plejehjem.test"


@pytest.fixture
def night(db: psycopg.Connection, make_user: Callable[..., Account]) -> Night:
    """A site at night with its roster set and every person's e-mail address."""
    site = night_site("Solsikken")
    people = Night(site, make_user("staff", site), make_user("staff", site),
                   make_user("admin"))
    with db.transaction():
        for account in (people.duty, people.second, people.coordinator):
            roster.set_contact(db, account.username, people.email(account))
        roster.set_roster(db, site, tonight(db, site), duty=people.duty.username,
                          second=people.second.username,
                          coordinator=people.coordinator.username, set_by="test")
    return people


def escalation_settings(port: int, **overrides: Any) -> Settings:
    return get_settings().model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout_s": 5,
        "escalation_second_minutes": {"normal": 5.0, "high": 2.0},
        "escalation_coordinator_minutes": {"normal": 15.0, "high": 8.0},
        "channel_attempts": 3, "channel_retry_s": 0.05, **overrides})


@dataclass
class MovableClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def watch(migrated: StackInfo, mail_server: MailServer
          ) -> Iterator[Callable[..., tuple[EscalationWatch, MovableClock]]]:
    pools = []

    def make(*sites: str, **overrides: Any) -> tuple[EscalationWatch, MovableClock]:
        settings = escalation_settings(mail_server.port, **overrides)
        pool = open_pool(settings)
        pools.append(pool)
        clock = MovableClock(datetime.now(UTC))
        channels = (PushChannel(PushSender(pool, settings)), EmailChannel(pool, settings))
        return EscalationWatch(pool, channels, settings, now=clock, sites=list(sites)), clock

    yield make
    for pool in pools:
        pool.close()


def called_at(db: psycopg.Connection, alert: int) -> datetime:
    row = db.execute("SELECT called_at FROM alerts WHERE id = %s", (alert,)).fetchone()
    assert row is not None
    found: datetime = row[0]
    return found


def timeline(db: psycopg.Connection, alert: int) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(r[0], r[1]) for r in db.execute(
        "SELECT change, alert->'passed_on' FROM alert_changes WHERE alert_id = %s ORDER BY seq",
        (alert,)).fetchall()]


def test_an_unacknowledged_call_goes_to_the_second_person_then_the_coordinator(
        night: Night, watch: Callable[..., tuple[EscalationWatch, MovableClock]],
        mail_server: MailServer, raise_alert: Callable[..., int],
        db: psycopg.Connection) -> None:
    escalation, clock = watch(night.site)
    alert = raise_alert(night.site, "f1", "left_flat", "normal")
    taken = raise_alert(night.site, "f1", "bed_exit_not_back", "normal")
    db.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_by = 'x', "
               "acknowledged_at = now() WHERE id = %s", (taken,))
    start = called_at(db, alert)

    clock.now = start + timedelta(minutes=4, seconds=59)
    assert escalation.check() == []  # the board still has it
    clock.now = start + timedelta(minutes=5)
    assert escalation.check() == [(alert, "second")]
    (mail,) = mail_server.wait_for(night.email(night.second))
    assert mail.subject == "Alarm ikke taget: Lejlighed 1"
    assert "Har forladt lejligheden, Lejlighed 1 på Solsikken: ikke taget i 5 minutter" in mail.body
    assert "Du er 2. person i nat" in mail.body
    assert mail_server.to(night.email(night.coordinator)) == []
    clock.now = start + timedelta(minutes=14)
    assert escalation.check() == []  # the second person's step is taken once
    clock.now = start + timedelta(minutes=15)
    assert escalation.check() == [(alert, "coordinator")]
    (mail,) = mail_server.wait_for(night.email(night.coordinator))
    assert "Du er vagthavende koordinator i nat" in mail.body
    clock.now = start + timedelta(hours=1)
    assert escalation.check() == []
    # In order, once each, never for the acknowledged call, never to the person on duty.
    assert [m.to for m in mail_server.received] == [[night.email(night.second)],
                                                    [night.email(night.coordinator)]]
    assert all(f"alert-{taken}" not in m.body for m in mail_server.received)
    # Every step is on the alert's timeline and its card, and the alert is escalated.
    changes = timeline(db, alert)
    assert [c for c, _ in changes] == ["raised", "passed_on", "passed_on"]
    steps = changes[-1][1]
    assert [(s["step"], s["channel"], s["status"]) for s in steps] == [
        ("second", "email", "sent"), ("coordinator", "email", "sent")]
    row = db.execute("SELECT escalated, escalated_at FROM alerts WHERE id = %s",
                     (alert,)).fetchone()
    assert row is not None and row[0] is True and row[1] is not None
    assert [c for c, _ in timeline(db, taken)] == ["raised"]


def test_a_call_acknowledged_before_its_deadline_is_never_sent_on(
        night: Night, watch: Callable[..., tuple[EscalationWatch, MovableClock]],
        mail_server: MailServer, raise_alert: Callable[..., int], db: psycopg.Connection,
        http: httpx.Client) -> None:
    escalation, clock = watch(night.site)
    alert = raise_alert(night.site, "f1", "left_flat", "high")
    response = http.post("/api/v1/auth/token", data={"username": night.duty.username,
                                                     "password": PASSWORD})
    headers = bearer(response.json()["access_token"])
    assert http.post(f"/api/v1/alerts/{alert}/ack", headers=headers).status_code == 200
    clock.now = called_at(db, alert) + timedelta(hours=1)
    assert escalation.check() == []
    assert mail_server.tries == 0


def test_a_failing_mail_server_is_retried_and_the_failure_is_shown_on_the_alert(
        night: Night, watch: Callable[..., tuple[EscalationWatch, MovableClock]],
        mail_server: MailServer, raise_alert: Callable[..., int], db: psycopg.Connection,
        http: httpx.Client, headers_for: Callable[[Account], dict[str, str]],
        caplog: pytest.LogCaptureFixture) -> None:
    escalation, clock = watch(night.site)
    alert = raise_alert(night.site, "f1", "building_exit", "high")
    start = called_at(db, alert)
    # The second person's mail: refused twice, taken at the third try.
    mail_server.refusals = ["451 4.3.0 try again later"] * 2
    clock.now = start + timedelta(minutes=2)
    assert escalation.check() == [(alert, "second")]
    assert len(mail_server.wait_for(night.email(night.second))) == 1
    # The coordinator's: refused every time; given up after three tries, and shown.
    mail_server.refusals = ["554 5.7.1 relay refused"] * 5
    clock.now = start + timedelta(minutes=8)
    with caplog.at_level("WARNING", logger="api.channels"):
        assert escalation.check() == [(alert, "coordinator")]
    assert mail_server.tries == 3 + 3
    assert mail_server.to(night.email(night.coordinator)) == []
    assert any("given up after 3 attempts" in r.getMessage() for r in caplog.records)
    shown = http.get(f"/api/v1/alerts/{alert}", headers=headers_for(night.coordinator)).json()
    second, coordinator = shown["passed_on"]
    assert (second["status"], second["attempts"]) == ("sent", 3)
    assert (coordinator["status"], coordinator["attempts"]) == ("failed", 3)
    assert "554" in coordinator["error"] and "relay refused" in coordinator["error"]
    assert timeline(db, alert)[-1][1][-1]["status"] == "failed"
    row = db.execute("SELECT status, attempts, last_error FROM escalation_steps WHERE "
                     "alert_id = %s AND step = 'coordinator'", (alert,)).fetchone()
    assert row is not None and row[:2] == ("failed", 3) and "554" in row[2]


def test_a_call_taken_while_its_mail_is_being_retried_is_not_sent_on(
        night: Night, watch: Callable[..., tuple[EscalationWatch, MovableClock]],
        mail_server: MailServer, raise_alert: Callable[..., int], db: psycopg.Connection,
        http: httpx.Client) -> None:
    # Long pauses between tries, so the nurse takes the call while the mail waits.
    escalation, clock = watch(night.site, channel_attempts=4, channel_retry_s=1.0)
    alert = raise_alert(night.site, "f1", "building_exit", "high")
    mail_server.refusals = ["451 4.3.0 try again later"] * 10
    clock.now = called_at(db, alert) + timedelta(minutes=2)
    with ThreadPoolExecutor(1) as pool:
        checking = pool.submit(escalation.check)
        deadline = time.monotonic() + 10
        while mail_server.tries < 1:
            assert time.monotonic() < deadline, "the first try never reached the mail server"
            time.sleep(0.02)
        token = http.post("/api/v1/auth/token", data={"username": night.duty.username,
                                                      "password": PASSWORD})
        taken = http.post(f"/api/v1/alerts/{alert}/ack",
                          headers=bearer(token.json()["access_token"]))
        assert taken.status_code == 200
        assert checking.result(timeout=30) == [(alert, "second")]
    assert mail_server.tries == 1 and mail_server.received == []
    row = db.execute("SELECT status, attempts FROM escalation_steps WHERE alert_id = %s "
                     "AND step = 'second'", (alert,)).fetchone()
    assert row == ("cancelled", 1)
    (step,) = timeline(db, alert)[-1][1]
    assert (step["status"], step["attempts"]) == ("cancelled", 1)
    assert "451" in step["error"]  # why the first try did not reach the person
    row = db.execute("SELECT escalated FROM alerts WHERE id = %s", (alert,)).fetchone()
    assert row == (False,)  # nothing was passed on
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'escalation.cancelled' "
                      "AND target = %s", (str(alert),)).fetchone() == (1,)
    clock.now += timedelta(hours=1)
    assert escalation.check() == []   # and never again, nor to the coordinator
    assert mail_server.tries == 1


def test_a_call_with_nobody_on_the_roster_says_so_on_the_alert(
        watch: Callable[..., tuple[EscalationWatch, MovableClock]], mail_server: MailServer,
        raise_alert: Callable[..., int], db: psycopg.Connection,
        make_user: Callable[..., Account]) -> None:
    site = night_site("Kornblomsten")
    roster.set_roster(db, site, tonight(db, site), duty=make_user("staff", site).username,
                      second=None, coordinator=None, set_by="test")
    without = night_site("Bellis")  # no roster at all: escalation not taken up
    escalation, clock = watch(site, without)
    alert = raise_alert(site, "f1", "left_flat", "normal")
    quiet = raise_alert(without, "f1", "left_flat", "normal")
    clock.now = called_at(db, quiet) + timedelta(minutes=5)
    assert escalation.check() == [(alert, "second")]
    ((change, steps),) = timeline(db, alert)[1:]
    assert change == "passed_on"
    assert (steps[0]["step"], steps[0]["status"]) == ("second", "nobody")
    assert [c for c, _ in timeline(db, quiet)] == ["raised"]
    assert escalation.check() == []  # each looked at once
    assert mail_server.tries == 0


def test_the_api_takes_the_roster_and_sends_an_unacknowledged_call_on_by_itself(
        migrated: StackInfo, mail_server: MailServer, make_user: Callable[..., Account],
        raise_alert: Callable[..., int], request: pytest.FixtureRequest,
        db: psycopg.Connection) -> None:
    site = night_site("Solsikken")
    api = ApiServer(escalation_settings(
        mail_server.port, escalation_second_minutes={"normal": 5.0, "high": 0.02},
        escalation_coordinator_minutes={"normal": 15.0, "high": 30.0},
        escalation_check_every_s=0.2))
    api.start()
    request.addfinalizer(api.stop)
    admin, second = make_user("admin"), make_user("staff", site)
    stranger = make_user("evaluator")
    with httpx.Client(base_url=api.url, timeout=10) as client:
        token = client.post("/api/v1/auth/token", data={"username": admin.username,
                                                        "password": PASSWORD})
        headers = bearer(token.json()["access_token"])
        # The date tonight's night began on (a night around now that began before midnight
        # began yesterday).
        night = tonight(db, site).isoformat()
        response = client.put(f"/api/v1/users/{second.username}/contact", headers=headers,
                              json={"email": "anden@plejehjem.test"})
        assert response.status_code == 204, response.text
        response = client.put(f"/api/v1/sites/{site}/roster/{night}", headers=headers,
                              json={"second": stranger.username})
        assert response.status_code == 422
        assert "kan ikke tage kald" in response.json()["detail"]
        response = client.put(f"/api/v1/sites/{site}/roster/{night}", headers=headers,
                              json={"duty": None, "second": second.username,
                                    "coordinator": admin.username})
        assert response.status_code == 200, response.text
        assert client.get(f"/api/v1/sites/{site}/roster/{night}",
                          headers=headers).json()["second"] == second.username
        # Only an admin sets it; the site's staff may read it; a missing night says what to do.
        token = client.post("/api/v1/auth/token", data={"username": second.username,
                                                        "password": PASSWORD})
        staff = bearer(token.json()["access_token"])
        assert client.put(f"/api/v1/sites/{site}/roster/{night}", headers=staff,
                          json={"second": second.username}).status_code == 403
        missing = client.get(f"/api/v1/sites/{site}/roster/2020-01-01", headers=staff)
        assert missing.status_code == 404
        assert "har ingen vagtplan for natten til 2020-01-01" in missing.json()["detail"]
        response = client.put(f"/api/v1/sites/{site}/escalation/high", headers=headers,
                              json={"second_after_minutes": 8, "coordinator_after_minutes": 2})
        assert response.status_code == 422
        alert = raise_alert(site, "exit", "building_exit", "high")
        (mail,) = mail_server.wait_for("anden@plejehjem.test")
    assert f"alert-{alert}" not in mail.body and "Har forladt" not in mail.body
    assert mail.subject.startswith("Alarm ikke taget")


def test_a_site_without_a_board_at_night_is_mailed_to_the_person_on_duty_and_the_second(
        night: Night, mail_server: MailServer, db: psycopg.Connection,
        request: pytest.FixtureRequest) -> None:
    api = ApiServer(escalation_settings(
        mail_server.port, board_silence_minutes=0.02, board_check_every_s=0.3,
        board_watch_sites=[night.site]))
    api.start()
    request.addfinalizer(api.stop)
    (to_duty,) = mail_server.wait_for(night.email(night.duty))
    (to_second,) = mail_server.wait_for(night.email(night.second))
    for mail in (to_duty, to_second):
        assert mail.subject == "Ingen nattavle forbundet"
        assert mail.body.strip() == "Ingen nattavle er forbundet på Solsikken"
    assert mail_server.to(night.email(night.coordinator)) == []

    # Each delivery is audited after the mail server took it: wait for the record, not the mail.
    def told() -> list[tuple[str]]:
        return db.execute("SELECT target FROM audit_log WHERE site = %s AND action = "
                          "'board.none_connected.sent' ORDER BY target", (night.site,)).fetchall()

    wait_until(lambda: len(told()) >= 2, timeout=10)
    assert sorted(told()) == sorted([(night.duty.username,), (night.second.username,)])


def test_the_cli_sets_and_shows_a_nights_roster_contacts_and_a_sites_minutes(
        make_user: Callable[..., Account], db: psycopg.Connection) -> None:
    from typer.testing import CliRunner

    from nattero.cli import app

    site = night_site("Solsikken")
    duty, second, boss = make_user("staff", site), make_user("staff", site), make_user("admin")

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    run("roster", "set", site, "--night", "2026-12-06", "--duty", duty.username, "--second",
        second.username, "--coordinator", boss.username)
    shown = run("roster", "show", site, "--night", "2026-12-06", "--json")
    assert f'"second": "{second.username}"' in shown
    assert roster.roster_of(db, site, date(2026, 12, 6)) == roster.Roster(
        site, date(2026, 12, 6), duty.username, second.username, boss.username)
    run("roster", "contact", second.username, "--email", "anden@plejehjem.test")
    assert roster.contact_email(db, second.username) == "anden@plejehjem.test"
    run("roster", "policy", site, "--severity", "high", "--second-after", "1",
        "--coordinator-after", "4")
    assert roster.policies(db)[(site, "high")] == roster.Policy(1.0, 4.0)
    # An evaluator takes no calls: refused with what to do.
    result = CliRunner().invoke(app, ["roster", "set", site, "--second",
                                      make_user("evaluator").username])
    assert result.exit_code == 1 and "cannot take calls" in result.output


def test_a_sites_own_minutes_come_before_the_defaults(
        night: Night, watch: Callable[..., tuple[EscalationWatch, MovableClock]],
        mail_server: MailServer, raise_alert: Callable[..., int],
        db: psycopg.Connection) -> None:
    roster.set_policy(db, night.site, "normal", roster.Policy(1.0, 3.0))
    escalation, clock = watch(night.site)
    alert = raise_alert(night.site, "f1", "left_flat", "normal")
    clock.now = called_at(db, alert) + timedelta(minutes=1)
    assert escalation.check() == [(alert, "second")]
    clock.now += timedelta(minutes=2)
    assert escalation.check() == [(alert, "coordinator")]
    assert len(mail_server.wait_for(night.email(night.coordinator))) == 1


def test_the_second_person_gets_the_call_on_the_phone_by_web_push_and_by_e_mail(
        night: Night, watch: Callable[..., tuple[EscalationWatch, MovableClock]],
        mail_server: MailServer, push_endpoint: PushEndpoint,  # noqa: F811
        raise_alert: Callable[..., int], db: psycopg.Connection) -> None:
    from ingest import push as push_store

    phone, colleague = Browser.new(), Browser.new()
    for who, browser, path in ((night.second, phone, "/second"),
                               (night.duty, colleague, "/duty")):
        keys = browser.keys()
        push_store.save_subscription(db, who.username, f"{push_endpoint.url}{path}",
                                     keys["p256dh"], keys["auth"], night.site)
    escalation, clock = watch(night.site)
    alert = raise_alert(night.site, "f1", "left_flat", "high")
    clock.now = called_at(db, alert) + timedelta(minutes=2)
    assert escalation.check() == [(alert, "second")]
    # A running API may push the call itself to the site's phones too (api.push): the
    # escalation's push is the one with a step.
    deadline = time.monotonic() + 15
    while not (sent := [m for m in map(phone.decrypt, push_endpoint.posts("/second"))
                        if "step" in m]):
        assert time.monotonic() < deadline, "no escalation push reached the second person"
        time.sleep(0.05)
    (message,) = sent
    assert message["title"] == "Alarm ikke taget: Lejlighed 1"
    assert "Du er 2. person i nat" in message["body"]
    assert message["alert"] == alert and message["step"] == "second"
    assert len(mail_server.wait_for(night.email(night.second))) == 1
    # Only the second person's phone.
    assert all("step" not in colleague.decrypt(r) for r in push_endpoint.posts("/duty"))
    steps = timeline(db, alert)[-1][1]
    assert sorted((s["channel"], s["status"]) for s in steps) == [("email", "sent"),
                                                                   ("push", "sent")]


def test_a_step_left_sending_by_a_process_that_died_is_sent_by_another(
        night: Night, watch: Callable[..., tuple[EscalationWatch, MovableClock]],
        mail_server: MailServer, raise_alert: Callable[..., int],
        db: psycopg.Connection) -> None:
    escalation, clock = watch(night.site)
    alert = raise_alert(night.site, "f1", "left_flat", "normal")
    clock.now = called_at(db, alert) + timedelta(minutes=5)
    # Another process claimed the mail and died before sending it: while its claim is
    # fresh, nobody else sends it; once stale, this process does.
    db.execute("INSERT INTO escalation_steps (alert_id, step, channel, recipient, due_at) "
               "VALUES (%s, 'second', 'email', %s, now())", (alert, night.second.username))
    assert escalation.check() == []
    db.execute("UPDATE escalation_steps SET claimed_at = now() - interval '11 minutes' "
               "WHERE alert_id = %s", (alert,))
    assert escalation.check() == [(alert, "second")]
    assert len(mail_server.wait_for(night.email(night.second))) == 1
    row = db.execute("SELECT status FROM escalation_steps WHERE alert_id = %s",
                     (alert,)).fetchone()
    assert row == ("sent",)


@dataclass
class TlsMailServer:
    controller: Controller
    received: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)   # (login, over TLS)


@pytest.fixture
def tls_mail_server(tmp_path: Path) -> Iterator[tuple[TlsMailServer, Path]]:
    """A real SMTP server that wants STARTTLS and a login, with a certificate from a CA of
    the test's own; yields it and that CA's certificate file."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from provisioning.certs import CertificateAuthority

    issued = CertificateAuthority.create(tmp_path / "mail-ca", "Mailserver").issue_server(
        "smtp", ["127.0.0.1"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(issued.cert), str(issued.key))
    server: TlsMailServer

    class Handler:
        async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
            content = envelope.content
            assert isinstance(content, bytes)
            server.received.append(Mail(list(envelope.rcpt_tos), message_from_bytes(content),
                                        time.time()))
            return "250 OK"

    def authenticator(smtp: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login = data.login.decode()
        server.logins.append((login, session.ssl is not None))
        return AuthResult(success=(login, data.password) == ("nattero", b"s3cret-mail"))

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port(),
                            tls_context=context, require_starttls=True, auth_required=True,
                            auth_require_tls=True, authenticator=authenticator)
    controller.start()
    server = TlsMailServer(controller)
    yield server, issued.ca
    controller.stop()


def test_mail_goes_over_starttls_with_a_login_only_to_a_server_whose_certificate_is_trusted(
        night: Night, tls_mail_server: tuple[TlsMailServer, Path], migrated: StackInfo,
        tmp_path: Path) -> None:
    from api.channels import deliver_with_retry
    from api.push import PushMessage
    from provisioning.certs import CertificateAuthority

    server, ca_file = tls_mail_server
    message = PushMessage(key="t-1", site=night.site, title="Alarm ikke taget: Lejlighed 1",
                          body="Prøve", tag="t", detail={})
    port = int(server.controller.port)

    def send(ca: Path) -> Any:
        settings = escalation_settings(port, smtp_starttls=True, smtp_ca_file=ca,
                                       smtp_username="nattero", smtp_password="s3cret-mail")
        pool = open_pool(settings)
        try:
            return deliver_with_retry(EmailChannel(pool, settings), night.second.username,
                                      message, attempts=3, retry_s=0.01)
        finally:
            pool.close()

    sent = send(ca_file)
    assert (sent.status, sent.attempts) == ("sent", 1)
    assert [m.to for m in server.received] == [[night.email(night.second)]]
    assert server.logins == [("nattero", True)]    # the password only ever went over TLS
    # A server whose certificate another CA signed (someone on the way): nothing is sent,
    # no password is given, and it is not tried again.
    stranger = CertificateAuthority.create(tmp_path / "other-ca", "Someone").ca_file
    refused = send(stranger)
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert "does not trust" in (refused.error or "")
    assert len(server.received) == 1 and server.logins == [("nattero", True)]


def test_a_mail_password_without_starttls_to_another_host_is_refused_at_start_up() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="NATTERO_SMTP_STARTTLS"):
        Settings.model_validate({"smtp_host": "mail.kommune.dk", "smtp_password": "x"})
    assert Settings.model_validate({"smtp_host": "mail.kommune.dk", "smtp_password": "x",
                                    "smtp_starttls": True}).smtp_starttls
    assert Settings.model_validate({"smtp_host": "127.0.0.1", "smtp_password": "x"})
