"""Issue 15 §2 and §5: rounds logged on the board, the baseline period, the anonymous
end-of-shift questionnaire and the resident-outcome notes, as the report counts them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from core.settings import StackInfo
from ingest.experience import add_shift_answer
from ingest.rounds import log_round
from simulators.credentials import CredentialStore
from tests.support.api import Account
from tests.support.evaluation import simulate_site
from tests.support.reading import visible_text
from tests.support.store import unique
from tests.test_report import embedded_figures

Headers = Callable[[Account], dict[str, str]]
CPH = ZoneInfo("Europe/Copenhagen")


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), CPH)


def report(http: httpx.Client, headers: dict[str, str], site: str, first: date, last: date,
           **params: float) -> httpx.Response:
    response = http.get("/api/v1/reports/benefit", headers=headers, params={
        "site": site, "from": first.isoformat(), "to": last.isoformat(), **params})
    assert response.status_code == 200, response.text
    return response


def test_staff_log_rounds_of_a_flat_a_floor_and_the_site_stored_and_audited(
        http: httpx.Client, site: str, db: psycopg.Connection,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    db.execute("UPDATE rooms SET corridor = 'lounge' WHERE site = %s AND id = 'f1'", (site,))
    staff = make_user("staff", site)
    url = f"/api/v1/sites/{site}/rounds"
    flat = http.post(url, headers=headers_for(staff), json={"scope": "flat", "room": "f1"})
    floor = http.post(url, headers=headers_for(staff), json={"scope": "floor", "room": "lounge"})
    whole = http.post(url, headers=headers_for(staff), json={"scope": "site"})
    assert [r.status_code for r in (flat, floor, whole)] == [201, 201, 201], whole.text
    assert [r.json()["flats"] for r in (flat, floor, whole)] == [1, 1, 1]
    rows = db.execute("SELECT scope, room, flats FROM rounds WHERE site = %s ORDER BY id",
                      (site,)).fetchall()
    assert rows == [("flat", "f1", 1), ("floor", "lounge", 1), ("site", None, 1)]
    audited = db.execute("SELECT actor, target FROM audit_log WHERE action = 'round.log' "
                         "AND site = %s ORDER BY id", (site,)).fetchall()
    assert audited == [(staff.username, str(r.json()["id"])) for r in (flat, floor, whole)]
    # Not a flat, not a corridor with flats, a room for the whole site: refused with a reason.
    exit_door = http.post(url, headers=headers_for(staff), json={"scope": "flat", "room": "exit"})
    assert exit_door.status_code == 404 and "exit" in exit_door.json()["detail"]
    assert http.post(url, headers=headers_for(staff),
                     json={"scope": "site", "room": "f1"}).status_code == 422


def test_staff_of_another_site_are_refused_rounds_and_answers(
        http: httpx.Client, site: str, db: psycopg.Connection,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    other = unique("t")
    db.execute("INSERT INTO sites (id, name) VALUES (%s, 'Andetsteds')", (other,))
    elsewhere = make_user("staff", other)
    headers = {**headers_for(elsewhere), "Accept-Language": "da"}
    round_ = http.post(f"/api/v1/sites/{site}/rounds", headers=headers, json={"scope": "site"})
    answer = http.post(f"/api/v1/sites/{site}/shift-answers", headers=headers, json={"calm": 4})
    assert round_.status_code == 403 and answer.status_code == 403
    assert "du er ikke personale på stedet" in round_.json()["detail"]
    assert db.execute("SELECT count(*) FROM rounds WHERE site = %s", (site,)).fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM shift_answers WHERE site = %s",
                      (site,)).fetchone() == (0,)
    # Setting the baseline is for admins only.
    own = make_user("staff", site)
    assert http.put(f"/api/v1/sites/{site}/baseline", headers=headers_for(own),
                    json={"first": "2026-06-01", "last": "2026-06-14"}).status_code == 403


def test_the_end_of_shift_answer_stores_no_user_board_or_time(
        http: httpx.Client, site: str, db: psycopg.Connection,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    staff = make_user("staff", site)
    response = http.post(f"/api/v1/sites/{site}/shift-answers", headers=headers_for(staff),
                         json={"calm": 4, "workload": 2, "comment": "Rolig nat på gangen"})
    assert response.status_code == 201, response.text
    columns = {c for (c,) in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = "
        "'shift_answers'").fetchall()}
    assert columns == {"id", "site", "night", "calm", "workload", "trust", "residents_rest",
                       "comment"}
    row = db.execute("SELECT calm, workload, trust, comment FROM shift_answers WHERE site = %s",
                     (site,)).fetchone()
    assert row == (4, 2, None, "Rolig nat på gangen")
    stored = db.execute("SELECT row_to_json(a)::text FROM shift_answers a WHERE site = %s",
                        (site,)).fetchone()
    assert stored is not None and staff.username not in stored[0]
    # Nor a trace in the audit log that would tie the answer to the account and a time.
    assert db.execute("SELECT count(*) FROM audit_log WHERE actor = %s AND site = %s",
                      (staff.username, site)).fetchone() == (0,)
    assert http.post(f"/api/v1/sites/{site}/shift-answers", headers=headers_for(staff),
                     json={"calm": 6}).status_code == 422


def test_measured_rounds_baseline_against_pilot_in_the_report(
        ev_http: httpx.Client, db: psycopg.Connection, migrated: StackInfo,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    first = date(2026, 7, 1)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        simulated = simulate_site(conn, "egely", first, 2)
    sid = simulated.id
    flats = db.execute("SELECT count(*) FROM rooms WHERE site = %s AND kind = 'flat'",
                       (sid,)).fetchone()
    assert flats is not None
    f = int(flats[0])
    flat = next(r.id for r in simulated.profile.rooms if r.kind.value == "flat")
    admin = make_user("admin")
    baseline = ev_http.put(f"/api/v1/sites/{sid}/baseline", headers=headers_for(admin),
                           json={"first": "2026-06-20", "last": "2026-06-22"})
    assert baseline.status_code == 200, baseline.text
    # Baseline: the night of 20 June has two rounds of the site and one of a flat (the
    # small hours belong to the evening before); the 21st one round; the 22nd none.
    for moment, scope, room in (
            (local(date(2026, 6, 20), 23), "site", None),
            (local(date(2026, 6, 21), 1), "flat", flat),
            (local(date(2026, 6, 21), 3), "site", None),
            (local(date(2026, 6, 22), 2), "site", None),
            (local(date(2026, 6, 25), 2), "site", None),    # neither baseline nor pilot
            # Pilot: one flat a night still checked.
            (local(date(2026, 7, 2), 2), "flat", flat),
            (local(date(2026, 7, 2), 23, 30), "flat", flat)):
        log_round(db, sid, scope, room, moment)  # type: ignore[arg-type]
    evaluator = headers_for(make_user("evaluator"))
    response = report(ev_http, evaluator, sid, first, first + timedelta(days=1),
                      handling_minutes=10)
    figures = embedded_figures(response.text)
    rounds = figures["rounds"]
    assert rounds["baseline_period"] == {"from": "2026-06-20", "to": "2026-06-22"}
    assert (rounds["baseline"]["nights"], rounds["baseline"]["rounds"],
            rounds["baseline"]["flat_checks"]) == (3, 4, 3 * f + 1)
    assert [n["rounds"] for n in rounds["baseline"]["per_night"]] == [3, 1, 0]
    assert (rounds["pilot"]["nights"], rounds["pilot"]["rounds"],
            rounds["pilot"]["flat_checks"]) == (2, 2, 2)
    staff = figures["staff_time"]
    assert staff["baseline_rounds_per_night"] == pytest.approx(1.33)
    assert staff["baseline_checks_per_night"] == pytest.approx(round((3 * f + 1) / 3, 2))
    assert staff["pilot_checks_per_night"] == 1.0
    assert staff["routine_minutes_per_night"] == pytest.approx(round((3 * f + 1) / 3 * 2, 1))
    assert staff["pilot_round_minutes_per_night"] == 2.0
    visits = staff["visits_per_night"]
    assert staff["freed_hours_per_night"] == pytest.approx(
        ((3 * f + 1) / 3 * 2 - 2 - visits * 10) / 60, abs=0.006)
    basis = staff["basis"]
    assert basis["baseline_rounds_per_night"] == basis["pilot_rounds_per_night"] == "measured"
    assert basis["freed_hours_per_night"] == "estimate"   # minutes per check is assumed
    # The page (Danish) shows the rounds as measured, with no "assumed" baseline warning.
    page = visible_text(report(ev_http, {**evaluator, "Accept-Language": "da"}, sid, first,
                               first + timedelta(days=1)).text)
    assert "Runder: baseline og pilot" in page
    assert re.search(r"Baseline \(før sensorerne\)\s+3\s+4\s+" + str(3 * f + 1), page)
    assert "Der er ikke registreret runder i en baselineperiode" not in page


def test_report_labels_the_rounds_assumed_when_none_were_measured(
        ev_http: httpx.Client, migrated: StackInfo, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    first = date(2026, 5, 1)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        simulated = simulate_site(conn, "egely", first, 1)
    evaluator = {**headers_for(make_user("evaluator")), "Accept-Language": "da"}
    response = report(ev_http, evaluator, simulated.id, first, first)
    staff = embedded_figures(response.text)["staff_time"]
    assert staff["basis"]["baseline_rounds_per_night"] == "assumed"
    assert staff["basis"]["pilot_rounds_per_night"] == "assumed"
    assert staff["baseline_rounds_per_night"] == 3.0     # the assumption, shown as one
    page = visible_text(response.text)
    assert "Der er ikke registreret runder i en baselineperiode: runderne før piloten er " \
           "antaget" in page
    assert re.search(r"Faste runder pr\. nat før piloten\s+3,00\s+antaget", page)
    assert re.search(r"Baseline \(før sensorerne\)\s+–\s+–\s+–\s+3,00\s+\S+\s+antaget", page)
    english = visible_text(report(ev_http, {**evaluator, "Accept-Language": "en"},
                                  simulated.id, first, first).text)
    assert re.search(r"Routine rounds per night before the pilot\s+3\.00\s+assumed", english)


def test_questionnaire_and_outcome_notes_aggregated_free_text_only_from_k_answers(
        ev_http: httpx.Client, db: psycopg.Connection, migrated: StackInfo,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    first = date(2026, 4, 1)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        simulated = simulate_site(conn, "egely", first, 2)
    sid = simulated.id
    add_shift_answer(db, sid, first, {"calm": 4, "trust": 5}, "Alarmerne kom til tiden")
    add_shift_answer(db, sid, first + timedelta(days=1), {"calm": 2, "trust": 3}, None)
    flats = [r.id for r in simulated.profile.rooms if r.kind.value == "flat"][:2]
    admin = headers_for(make_user("admin"))
    for room, day, self_reliance, life in ((flats[0], first, 2, 3),
                                           (flats[0], first + timedelta(days=1), 4, 4),
                                           (flats[1], first, 3, 3)):
        response = ev_http.post(f"/api/v1/sites/{sid}/rooms/{room}/outcomes", headers=admin,
                                json={"noted_on": day.isoformat(),
                                      "self_reliance": self_reliance, "quality_of_life": life})
        assert response.status_code == 201, response.text
    staff = make_user("staff", sid)
    assert ev_http.post(f"/api/v1/sites/{sid}/rooms/{flats[0]}/outcomes",
                        headers=headers_for(staff), json={
                            "noted_on": first.isoformat(), "self_reliance": 1,
                            "quality_of_life": 1}).status_code == 403
    evaluator = {**headers_for(make_user("evaluator")), "Accept-Language": "da"}
    response = report(ev_http, evaluator, sid, first, first + timedelta(days=1))
    e = embedded_figures(response.text)["experience"]
    assert e["answers"] == 2 and e["question_means"]["calm"] == 3.0
    assert e["question_answers"] == {"calm": 2, "workload": 0, "trust": 2, "residents_rest": 0}
    assert e["comments"] == [] and e["comments_withheld"] == 1
    assert (e["outcome_notes"], e["outcome_flats"], e["flats_followed"]) == (3, 2, 1)
    assert e["self_reliance_mean"] == 3.0 and e["self_reliance_change"] == 2.0
    assert e["quality_of_life_change"] == 1.0
    page = visible_text(response.text)
    assert "Natten føltes rolig 3 af 5 (2 svar)" in page
    assert "1 kommentar tilbageholdes: færre end 5 svar" in page
    assert "+2 1 lejlighed med to notater eller flere" in page
    assert "Alarmerne kom til tiden" not in page and flats[0] not in page
    for _ in range(3):
        add_shift_answer(db, sid, first, {"calm": 5}, None)
    shown = report(ev_http, evaluator, sid, first, first + timedelta(days=1))
    assert embedded_figures(shown.text)["experience"]["comments"] == ["Alarmerne kom til tiden"]
    assert "Alarmerne kom til tiden" in visible_text(shown.text)


def test_admin_sets_the_baseline_period_from_the_command_line(
        site: str, db: psycopg.Connection) -> None:
    from typer.testing import CliRunner

    from nattero.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["site", "baseline", site])
    assert missing.exit_code == 1 and "has no baseline period yet" in missing.output
    done = runner.invoke(app, ["site", "baseline", site, "--from", "2026-06-01", "--to",
                               "2026-06-14", "--json"])
    assert done.exit_code == 0, done.output
    assert db.execute("SELECT first_night, last_night FROM baseline_periods WHERE site = %s",
                      (site,)).fetchone() == (date(2026, 6, 1), date(2026, 6, 14))
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'site.baseline' "
                      "AND site = %s", (site,)).fetchone() == (1,)
    backwards = runner.invoke(app, ["site", "baseline", site, "--from", "2026-06-14", "--to",
                                    "2026-06-01"])
    assert backwards.exit_code == 1 and "before the last" in backwards.output


def test_paper_rounds_read_from_a_csv_are_stored_once_audited_and_a_bad_file_stores_nothing(
        site: str, db: psycopg.Connection, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nattero.cli import app

    db.execute("UPDATE rooms SET corridor = 'lounge' WHERE site = %s AND id = 'f1'", (site,))
    good = tmp_path / "runder.csv"
    good.write_text("tidspunkt;omfang;rum\n"
                    "2026-06-20T23:05+02:00;hele stedet;\n"
                    "2026-06-21T02:10+02:00;etage;lounge\n"
                    "# a comment line\n"
                    "2026-06-21T04:00+02:00;lejlighed;f1\n", encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(app, ["site", "rounds", site, str(good), "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"site": site, "read": 3, "stored": 3}
    again = runner.invoke(app, ["site", "rounds", site, str(good), "--json"])
    assert json.loads(again.output) == {"site": site, "read": 3, "stored": 0}
    rows = db.execute("SELECT scope, room, flats, walked_at FROM rounds WHERE site = %s "
                      "ORDER BY walked_at", (site,)).fetchall()
    assert rows == [("site", None, 1, local(date(2026, 6, 20), 23, 5)),
                    ("floor", "lounge", 1, local(date(2026, 6, 21), 2, 10)),
                    ("flat", "f1", 1, local(date(2026, 6, 21), 4))]
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'round.log' AND site = %s "
                      "AND actor LIKE 'cli:%%'", (site,)).fetchone() == (3,)

    bad = tmp_path / "forkert.csv"
    bad.write_text("tidspunkt,omfang,rum\n"
                   "2026-06-22T23:00+02:00,hele stedet,\n"
                   "2026-06-22T23:30,hele stedet,\n"          # no UTC offset
                   "i nat,hele stedet,\n"                     # not a time
                   "2026-06-23T01:00+02:00,køkken,\n"         # not a scope
                   "2026-06-23T02:00+02:00,lejlighed,\n", encoding="utf-8")  # no room
    refused = runner.invoke(app, ["site", "rounds", site, str(bad)])
    assert refused.exit_code == 1
    for line in ("line 3", "line 4", "line 5", "line 6"):
        assert line in refused.output
    assert "line 2" not in refused.output and "nothing was stored" in refused.output
    not_a_flat = tmp_path / "rum.csv"
    not_a_flat.write_text("walked_at,scope,room\n2026-06-22T23:00+02:00,site,\n"
                          "2026-06-23T01:00+02:00,flat,exit\n", encoding="utf-8")
    refused = runner.invoke(app, ["site", "rounds", site, str(not_a_flat)])
    assert refused.exit_code == 1 and "line 3: 'exit' is not a flat" in refused.output
    assert db.execute("SELECT count(*) FROM rounds WHERE site = %s", (site,)).fetchone() == (3,)


def test_a_simulation_with_a_baseline_logs_its_staffs_rounds_and_the_report_measures_them(
        ev_http: httpx.Client, migrated: StackInfo, db: psycopg.Connection, tmp_path: Path,
        make_user: Callable[..., Account], headers_for: Headers) -> None:
    from core.settings import Settings
    from simulators.command import run_simulation
    from simulators.plan import Delivery
    from simulators.profile import load_profile
    from simulators.publisher import PublishStats
    from simulators.rounds import plan_rounds

    suffix = "-" + unique("r").replace("_", "-")[-10:]
    site = "egely" + suffix

    def no_broker(deliveries: Sequence[Delivery], *_args: object, **_kw: object
                  ) -> PublishStats:
        return PublishStats(events={site: len(deliveries)})

    first = date(2026, 8, 3)

    def simulate() -> None:
        run_simulation(Settings.model_validate({}), ["egely"], nights=2, speed="max", seed=5,
                       start=first, progress=False, publisher=no_broker,
                       site_suffix=suffix, baseline_nights=7,
                       credentials=CredentialStore(tmp_path / "credentials.json"))

    simulate()
    simulate()  # the same nights again: the same rounds, not twice
    profile = load_profile("egely")
    before = [first - timedelta(days=7 - i) for i in range(7)]
    planned_before = plan_rounds(profile, before, 5, baseline=True)
    planned_pilot = plan_rounds(profile, [first, first + timedelta(days=1)], 5, baseline=False)
    assert len(planned_before) > 7 * 3 and len(planned_pilot) == 2   # 4 and 1 a night, mostly
    stored = db.execute("SELECT walked_at, flats FROM rounds WHERE site = %s ORDER BY walked_at",
                        (site,)).fetchall()
    assert [at for at, _ in stored] == [r.walked_at for r in planned_before + planned_pilot]
    assert {flats for _, flats in stored} == {8}
    assert db.execute("SELECT first_night, last_night FROM baseline_periods WHERE site = %s",
                      (site,)).fetchone() == (before[0], before[-1])

    evaluator = {**headers_for(make_user("evaluator")), "Accept-Language": "da"}
    response = report(ev_http, evaluator, site, first, first + timedelta(days=1))
    figures = embedded_figures(response.text)
    assert figures["rounds"]["baseline"]["rounds"] == len(planned_before)
    assert figures["staff_time"]["basis"]["baseline_rounds_per_night"] == "measured"
    assert figures["staff_time"]["baseline_rounds_per_night"] == pytest.approx(
        round(len(planned_before) / 7, 2))
    page = visible_text(response.text)
    assert re.search(r"Baseline \(før sensorerne\)\s+7\s+" + str(len(planned_before)), page)
    assert "Der er ikke registreret runder i en baselineperiode" not in page


@pytest.mark.pure
def test_planned_rounds_are_the_same_for_the_same_seed_and_read_back_from_their_csv() -> None:
    from provisioning.rounds_import import read_rounds
    from simulators.profile import load_profile
    from simulators.rounds import plan_rounds, rounds_csv

    profile = load_profile("havnely")
    nights = [date(2026, 11, 16) + timedelta(days=i) for i in range(14)]
    planned = plan_rounds(profile, nights, 1, baseline=True)
    assert planned == plan_rounds(profile, nights, 1, baseline=True)
    assert planned != plan_rounds(profile, nights, 2, baseline=True)
    assert 3.5 * 14 <= len(planned) <= 4 * 14        # four a night, rarely pushed out
    for r in planned:
        start, end = profile.night_window(r.night)
        assert start <= r.walked_at < end
    pilot = plan_rounds(profile, nights, 1, baseline=False)
    assert len(pilot) == 14
    read = read_rounds(rounds_csv(planned))
    assert [(line.walked_at, line.scope, line.room) for line in read] == [
        (r.walked_at, "site", None) for r in planned]
