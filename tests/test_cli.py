"""``nattero``'s face: fast help, one clear line for an expected failure, a traceback for a bug,
list verbs, and ``site apply`` that provisions a whole site idempotently."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from core.settings import get_settings
from nattero import __version__
from nattero.cli import app
from tests.support import REPO
from tests.support.cli import nattero_cli
from tests.support.store import unique

HEAVY = ("matplotlib", "fastapi", "psycopg", "sqlalchemy", "paho", "pyarrow", "pandas",
         "uvicorn", "evaluation", "api", "gateway", "rules")


def invoke(*args: str, input_text: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input_text)


def assert_one_clear_line(result: Result, expected: str) -> None:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Change NATTERO_* variables for one test; the cached settings are re-read around it."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- fast and light -------------------------------------------------------------------------

def test_help_answers_in_under_half_a_second() -> None:
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "nattero", "--help"], capture_output=True,
                              text=True, cwd=REPO, timeout=30)
        timings.append(time.perf_counter() - started)
        assert done.returncode == 0 and "site" in done.stdout, done.stderr
    assert min(timings) < 0.5, timings


def test_importing_the_cli_loads_no_heavy_library() -> None:
    probe = ("import sys, nattero.cli; "
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=REPO, timeout=30, check=True)
    assert done.stdout.strip() == "", f"imported by nattero.cli: {done.stdout.strip()}"


def test_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"nattero {__version__}"
    assert __version__ == version("nattero")


def test_choices_spelled_out_for_help_match_the_enums() -> None:
    from api.users import Role
    from evaluation.formats import ExportFormat
    from evaluation.occupancy import DEFAULT_K, Bucket, Level
    from nattero.commands import evaluation, users

    def values(literal: object) -> set[str]:
        return set(typing.get_args(literal))

    assert values(users.RoleName) == {role.value for role in Role}
    assert values(evaluation.FormatName) == {f.value for f in ExportFormat}
    assert values(evaluation.LevelName) == {level.value for level in Level}
    assert values(evaluation.BucketName) == {bucket.value for bucket in Bucket}
    assert evaluation.DEFAULT_K == DEFAULT_K


# -- expected failures: one clear line, exit 1 ------------------------------------------------

BAD_REQUESTS = [
    pytest.param(["site", "add", "Bad Site", "--name", "x"], "must be lower-case",
                 id="site id with a space"),
    pytest.param(["site", "add", "{new}", "--name", "x", "--night", "25:00-07:00"],
                 "HH:MM-HH:MM", id="bad night window"),
    pytest.param(["site", "add", "{new}", "--name", "x", "--tz", "Mars/Olympus"], "time zone",
                 id="unknown time zone"),
    pytest.param(["room", "add", "{new}", "f1", "--kind", "flat"], "does not exist",
                 id="room on an unknown site"),
    pytest.param(["room", "list", "{new}"], "does not exist", id="rooms of an unknown site"),
    pytest.param(["device", "list", "{new}"], "does not exist",
                 id="devices of an unknown site"),
    pytest.param(["room", "basis", "{site}", "lounge", "--consent"], "only for flats",
                 id="basis for a common room"),
    pytest.param(["room", "basis", "{site}", "f1", "--decision", "KK-1"], "--valid-from",
                 id="decision without a start"),
    pytest.param(["device", "add", "{site}", "d1", "--room", "nowhere", "--kind", "door"],
                 "does not exist", id="device in an unknown room"),
    pytest.param(["device", "add", "{site}", "d1", "--room", "f1", "--kind", "door",
                  "--heartbeat", "1"], "heartbeat", id="heartbeat too short"),
    pytest.param(["device", "revoke", "{site}", "ghost"], "not provisioned",
                 id="revoke an unknown device"),
    pytest.param(["device", "rotate", "{site}", "ghost"], "not provisioned",
                 id="rotate an unknown device"),
    pytest.param(["report", "--site", "{site}", "--out", "{tmp}/r.html"], "--from and --to",
                 id="benefit report without a period"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_REQUESTS)
def test_a_bad_request_prints_one_clear_line_and_exits_1(
        args: list[str], expected: str, site: str, tmp_path: Path) -> None:
    new = unique("s")
    filled = [arg.format(site=site, new=new, tmp=tmp_path) for arg in args]
    assert_one_clear_line(invoke(*filled), expected)


def test_a_duplicate_user_prints_one_clear_line(migrated: object) -> None:
    name = unique("u")
    assert invoke("user", "add", name, "--role", "admin", "--password-stdin",
                  input_text="correct horse battery\n").exit_code == 0
    result = invoke("user", "add", name, "--role", "admin", "--password-stdin",
                    input_text="correct horse battery\n")
    assert_one_clear_line(result, name)


def test_a_bad_site_layout_names_the_problem(migrated: object, tmp_path: Path) -> None:
    layout = tmp_path / "site.yaml"
    layout.write_text("site: x\nname: X\nrooms:\n  - {id: f1, kind: attic}\n")
    assert_one_clear_line(invoke("site", "apply", str(layout)), "rooms.0.kind")
    assert_one_clear_line(invoke("site", "apply", str(tmp_path / "missing.yaml")),
                          "cannot read")
    site = unique("apply")
    layout.write_text(f"site: {site}\nname: X\ndevices:\n  - {{id: d1, room: f9, kind: door}}\n")
    assert_one_clear_line(invoke("site", "apply", str(layout)), "room 'f9'")
    assert invoke("site", "list", "--json").stdout.count(site) == 0


UNREACHABLE_VERBS = [
    pytest.param(["site", "list"], id="site list"),
    pytest.param(["site", "add", "x", "--name", "X"], id="site add"),
    pytest.param(["device", "list"], id="device list"),
    pytest.param(["user", "add", "someone", "--role", "admin", "--password-stdin"],
                 id="user add"),
    pytest.param(["export", "--site", "x", "--from", "2026-11-01", "--to", "2026-11-02",
                  "--out", "-"], id="export"),
    pytest.param(["maintenance", "run"], id="maintenance run"),
    pytest.param(["migrate"], id="migrate"),
]


@pytest.mark.parametrize("args", UNREACHABLE_VERBS)
def test_an_unreachable_database_says_what_to_do(
        args: list[str], fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv("NATTERO_DATABASE_URL",
                          f"postgresql://nattero@127.0.0.1:{closed_port()}/nattero")
    fresh_settings.setenv("PGCONNECT_TIMEOUT", "5")
    result = invoke(*args, input_text="correct horse battery\n")
    assert_one_clear_line(result, "the database is not reachable")
    assert "nattero up" in result.stderr and "NATTERO_DATABASE_URL" in result.stderr


def test_no_stack_and_no_database_url_says_run_nattero_up(
        tmp_path: Path, fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.delenv("NATTERO_DATABASE_URL", raising=False)
    fresh_settings.setenv("NATTERO_STATE_DIR", str(tmp_path))
    assert_one_clear_line(invoke("site", "list"), "nattero up")


def test_a_bad_setting_names_the_variable(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.setenv("NATTERO_TOKEN_MINUTES", "soon")
    assert_one_clear_line(invoke("site", "list"), "NATTERO_TOKEN_MINUTES")


def test_the_real_command_prints_no_traceback_when_the_database_is_down() -> None:
    done = nattero_cli("site", "list", env={
        "NATTERO_DATABASE_URL": f"postgresql://nattero@127.0.0.1:{closed_port()}/nattero"})
    assert done.returncode == 1
    assert done.stderr.startswith("error: the database is not reachable"), done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_schema_never_migrated_says_run_nattero_migrate() -> None:
    import psycopg.errors
    import sqlalchemy.exc

    from nattero.unavailable import translate

    missing = psycopg.errors.UndefinedTable('relation "sites" does not exist')
    for raised in (missing, sqlalchemy.exc.ProgrammingError("SELECT", {}, missing)):
        translated = translate(raised)
        assert translated is not None and "nattero migrate" in str(translated)
    assert translate(KeyError("sites")) is None
    refused = translate(ConnectionRefusedError(111, "Connection refused"))
    assert refused is not None and "NATTERO_MQTT_PORT" in str(refused)


# -- bugs keep their traceback ------------------------------------------------------------------

def test_a_bug_in_a_verb_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.listing

    def broken(conn: object) -> list[object]:
        raise KeyError("night_start")

    monkeypatch.setattr(ingest.listing, "site_overview", broken)
    result = invoke("site", "list")
    assert isinstance(result.exception, KeyError), result.output
    assert "error:" not in result.output


def test_a_bug_prints_a_traceback_from_the_real_command(tmp_path: Path) -> None:
    # A sitecustomize that breaks one verb, as a bug would.
    (tmp_path / "sitecustomize.py").write_text(
        "import ingest.listing\n"
        "def broken(conn):\n    raise KeyError('night_start')\n"
        "ingest.listing.site_overview = broken\n")
    done = nattero_cli("site", "list", env={"PYTHONPATH": f"{tmp_path}:{REPO}"})
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "KeyError: 'night_start'" in done.stderr
    assert "error: " not in done.stderr


# -- list verbs and site apply -------------------------------------------------------------------

LAYOUT = """\
site: {site}
name: Testhjemmet Apply
night: "22:30-06:30"
rooms:
  - {{id: f1, kind: flat, label: Lejlighed 1, basis: {{consent: true, valid_from: 2020-01-01}}}}
  - {{id: f2, kind: flat, basis: {{decision: KK-2026-1, valid_from: 2026-01-01}}}}
  - {{id: lounge, kind: common, label: Dagligstue}}
devices:
  - {{id: f1-door, room: f1, kind: door}}
  - {{id: f2-bed, room: f2, kind: bed, heartbeat: 120}}
  - {{id: lounge-motion, room: lounge, kind: motion}}
"""


def test_site_apply_adds_a_whole_site_once_and_prints_the_passwords(
        db: psycopg.Connection, tmp_path: Path) -> None:
    site = unique("apply")
    layout = tmp_path / "site.yaml"
    layout.write_text(LAYOUT.format(site=site))
    first = invoke("site", "apply", str(layout), "--json")
    assert first.exit_code == 0, first.output
    [applied] = json.loads(first.stdout)
    assert applied["site_added"] and sorted(applied["devices"]) == [
        "f1-door", "f2-bed", "lounge-motion"]
    assert applied["devices"]["f1-door"]["password"]
    assert sorted(applied["bases_recorded"]) == ["f1", "f2"]

    again = invoke("site", "apply", "-", "--json", input_text=LAYOUT.format(site=site))
    assert again.exit_code == 0, again.output
    [unchanged] = json.loads(again.stdout)
    assert not unchanged["site_added"] and unchanged["devices"] == {}
    assert unchanged["rooms_added"] == [] and unchanged["bases_recorded"] == []
    assert db.execute("SELECT count(*) FROM room_bases WHERE site = %s",
                      (site,)).fetchone() == (2,)

    rooms = json.loads(invoke("room", "list", site, "--json").stdout)
    assert [(r["room"], r["kind"], r["devices"]) for r in rooms] == [
        ("f1", "flat", 1), ("f2", "flat", 1), ("lounge", "common", 1)]
    devices = json.loads(invoke("device", "list", site, "--json").stdout)
    assert [d["device"] for d in devices] == ["f1-door", "f2-bed", "lounge-motion"]
    [listed] = [s for s in json.loads(invoke("site", "list", "--json").stdout)
                if s["site"] == site]
    assert listed["night"] == "22:30-06:30" and listed["rooms"] == 3 and listed["devices"] == 3


def test_device_rotate_gives_a_new_password(site: str, add_device: typing.Any) -> None:
    _, old = add_device(site, "d-rot")
    result = invoke("device", "rotate", site, "d-rot", "--json")
    assert result.exit_code == 0, result.output
    [rotated] = json.loads(result.stdout)
    assert rotated["device"] == "d-rot" and rotated["password"] != old


def test_user_list_shows_roles_and_sites_never_a_hash(site: str) -> None:
    name = unique("nattevagt")
    added = invoke("user", "add", name, "--role", "staff", "--site", site, "--password-stdin",
                   input_text="correct horse battery\n")
    assert added.exit_code == 0, added.output
    listed = invoke("user", "list", "--json")
    assert listed.exit_code == 0, listed.output
    [user] = [u for u in json.loads(listed.stdout) if u["username"] == name]
    assert user["role"] == "staff" and user["sites"] == [site]
    assert "argon2" not in listed.stdout


def test_site_apply_prints_the_passwords_issued_before_a_failure(migrated: object) -> None:
    first, second = unique("apply"), unique("apply")
    layouts = (f"site: {first}\nname: A\nrooms: [{{id: hall, kind: common}}]\n"
               f"devices:\n  - {{id: hall-motion, room: hall, kind: motion}}\n"
               f"  - {{id: hall-2, room: hall, kind: motion, heartbeat: 1}}\n"
               f"---\nsite: {second}\nname: B\n")
    result = invoke("site", "apply", "-", "--json", input_text=layouts)
    assert_one_clear_line(result, "partly applied")
    [partly] = json.loads(result.stdout)
    assert partly["site"] == first and list(partly["devices"]) == ["hall-motion"]

    later = (f"site: {first}\nname: A\n---\nsite: {second}\nname: B\ntz: Mars/Olympus\n")
    result = invoke("site", "apply", "-", "--json", input_text=later)
    assert_one_clear_line(result, "time zone")
    assert [applied["site"] for applied in json.loads(result.stdout)] == [first]


def test_site_apply_sets_site_rules_and_corridors_once(db: psycopg.Connection) -> None:
    site = unique("apply")
    document = (f"site: {site}\nname: Herberget Test\n"
                "rooms:\n  - {id: v1, kind: flat, corridor: gang, basis: {consent: true}}\n"
                "  - {id: gang, kind: common}\n"
                "rules:\n  building_exit: {minutes: 15}\n")
    first = invoke("site", "apply", "-", "--json", input_text=document)
    assert first.exit_code == 0, first.output
    [applied] = json.loads(first.stdout)
    assert applied["rules_set"] == ["building_exit"] and applied["corridors_set"] == ["v1"]
    [(minutes, by)] = db.execute("SELECT minutes, updated_by FROM rule_settings WHERE "
                                 "site = %s AND room IS NULL AND rule = 'building_exit'",
                                 (site,)).fetchall()
    assert minutes == 15 and by.startswith("cli")
    assert db.execute("SELECT corridor FROM rooms WHERE site = %s AND id = 'v1'",
                      (site,)).fetchone() == ("gang",)
    assert db.execute("SELECT count(*) FROM audit_log WHERE site = %s AND action = "
                      "'rules.set'", (site,)).fetchone() == (1,)

    again = invoke("site", "apply", "-", "--json", input_text=document)
    [unchanged] = json.loads(again.stdout)
    assert unchanged["rules_set"] == [] and unchanged["corridors_set"] == []

    wrong = document.replace("corridor: gang", "corridor: v1")
    result = invoke("site", "apply", "-", "--json", input_text=wrong)
    assert_one_clear_line(result, "must be a common room")
    zero = document.replace("building_exit: {minutes: 15}", "left_flat: {minutes: 0}")
    assert_one_clear_line(invoke("site", "apply", "-", input_text=zero), "0 means")


def test_site_apply_adds_a_device_only_when_its_site_is_complete(
        db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """A running rules engine reads a site's layout again only when an event names a device
    it does not know; so a device must never be visible before its room's basis, corridor
    and the site's rules (its first events would be judged without them)."""
    import provisioning.layout
    import provisioning.sites
    from ingest.rule_layouts import read_layouts

    site = unique("order")
    seen_at_each_device: list[tuple[bool, bool, bool]] = []
    add_device = provisioning.sites.add_device  # what provisioning.layout calls

    def watched(*args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        stored = read_layouts(db)  # what the engine would read at this moment
        seen_at_each_device.append((
            any(b.site == site and b.room == "v1" for b in stored.bases),
            any(r.site == site and r.id == "v1" and r.corridor == "gang" for r in stored.rooms),
            any(s.site == site and s.minutes == 15 for s in stored.rule_settings)))
        return add_device(*args, **kwargs)

    monkeypatch.setattr(provisioning.layout, "add_device", watched)
    document = (f"site: {site}\nname: Rækkefølge\n"
                "rooms:\n  - {id: v1, kind: flat, corridor: gang, basis: {consent: true}}\n"
                "  - {id: gang, kind: common}\n"
                "devices:\n  - {id: v1-door, room: v1, kind: door}\n"
                "  - {id: gang-motion, room: gang, kind: motion}\n"
                "rules:\n  building_exit: {minutes: 15}\n")
    result = invoke("site", "apply", "-", "--json", input_text=document)
    assert result.exit_code == 0, result.output
    assert seen_at_each_device == [(True, True, True)] * 2
