"""An evaluator tries to re-identify a resident from anonymous exports, and fails.

A home of six flats, two nights in October and one in November. Every flat reports a
heartbeat in every quarter hour of the night (flat n sends n of them, so each flat's rows
are recognisable) -- except in 04:00-04:15 of the night of 14 October, when only flat 3
reports: its door opens and closes. That quarter has one contributing room, fewer than
k = 5, so it is suppressed, and that door opening is the only one of the month: any door
opening in any export, at any level or bucket width, is the secret leaking.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from core.settings import StackInfo
from evaluation.errors import NightNotEnded
from evaluation.exports import prepare_export
from evaluation.formats import ExportFormat
from evaluation.occupancy import KIND_COLUMNS, Bucket, Level, OccupancyRequest
from evaluation.period import Period, load_sites
from nattero.cli import app
from simulators import SiteProfile, load_profile
from tests.support.api import Account
from tests.support.evaluation import provision
from tests.support.exports import REASON, export, read_export
from tests.support.store import unique

Headers = Callable[[Account], dict[str, str]]
Row = dict[str, Any]

ATTACK_NIGHT = date(2026, 10, 14)
SECRET_QUARTER = time(4, 0)
SECRET_FLAT = "f03"
NIGHTS = (ATTACK_NIGHT, date(2026, 10, 21), date(2026, 11, 11))
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))
WIDTHS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1)}


def _quarters(profile: SiteProfile, night: date) -> list[datetime]:
    start, end = profile.night_window(night)
    return [start + timedelta(minutes=15 * i)
            for i in range(int((end - start).total_seconds() // 900))]


@pytest.fixture(scope="module")
def six_flats(migrated: StackInfo) -> SiteProfile:
    base = load_profile("egely")
    group = base.flats[0].model_copy(update={"numbers": "1-6"})
    profile = base.model_copy(update={"site": unique("anon"), "flats": [group],
                                      "common": [], "exits": []})
    tz = ZoneInfo(profile.tz)
    with psycopg.connect(migrated.database_url, autocommit=True) as conn:
        provision(conn, profile)
        with conn.transaction(), conn.cursor() as cur, cur.copy(
                "COPY events (site, device, event_id, ts, room, kind, received_at) "
                "FROM STDIN") as copy:
            n_event = 0

            def event(flat: str, ts: datetime, kind: str) -> None:
                nonlocal n_event
                n_event += 1
                copy.write_row((profile.site, f"{flat}-door", str(n_event), ts, flat, kind,
                                ts + timedelta(seconds=1)))

            for night in NIGHTS:
                for quarter in _quarters(profile, night):
                    local = quarter.astimezone(tz)
                    if night == ATTACK_NIGHT and local.time() == SECRET_QUARTER:
                        event(SECRET_FLAT, quarter + timedelta(minutes=5, seconds=13), "door.open")
                        event(SECRET_FLAT, quarter + timedelta(minutes=6, seconds=2),
                              "door.closed")
                        continue
                    for n in range(1, 7):
                        for beat in range(n):
                            event(f"f{n:02d}", quarter + timedelta(seconds=60 * beat + n),
                                  "heartbeat")
    return profile


def _rows(http: httpx.Client, headers: dict[str, str], site: str, first: date, last: date,
          **params: Any) -> list[Row]:
    rows, _ = read_export(export(http, headers, [site], first, last, **params), "csv")
    for row in rows:
        row["start"] = datetime.fromisoformat(row["bucket"])
    return rows


def _figures(row: Row) -> Counter[str]:
    return Counter({name: int(row[name] or 0) for name in KIND_COLUMNS})


def _residuals(coarse: list[Row], fine: list[Row], contains: Callable[[Row, Row], bool]
               ) -> list[tuple[datetime, dict[str, int]]]:
    """The differencing attack: a coarse bucket minus the published fine buckets inside
    it. Whatever is left over belongs to a suppressed fine bucket."""
    left = []
    for big in coarse:
        if big.get("suppressed") == "1":
            continue
        rest = _figures(big)
        rest.subtract(sum((_figures(small) for small in fine
                           if small.get("suppressed") != "1" and contains(big, small)),
                          Counter()))
        if any(rest.values()):
            left.append((big["start"], {k: v for k, v in rest.items() if v}))
    return left


def _within(width: str, tz: ZoneInfo) -> Callable[[Row, Row], bool]:
    if width == "1d":
        return lambda big, small: (big["start"].astimezone(tz).date()
                                   == small["start"].astimezone(tz).date())
    span = WIDTHS[width]
    return lambda big, small: big["start"] <= small["start"] < big["start"] + span


def test_differencing_15m_1h_1d_and_room_level_recover_nothing_suppressed(
        ev_http: httpx.Client, six_flats: SiteProfile, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    site, tz = six_flats.site, ZoneInfo(six_flats.tz)
    by_site = {width: _rows(ev_http, evaluator, site, *OCTOBER, bucket=width)
               for width in ("15m", "1h", "1d")}
    by_room = {width: _rows(ev_http, evaluator, site, *OCTOBER, bucket=width, level="room")
               for width in ("15m", "1h", "1d")}

    # The secret quarter is there, suppressed, with its one contributing room.
    secret = datetime.combine(ATTACK_NIGHT + timedelta(days=1), SECRET_QUARTER, tz)
    [quarter] = [r for r in by_site["15m"] if r["start"] == secret]
    assert quarter["suppressed"] == "1" and quarter["rooms_contributing"] == "1"
    assert quarter["door_open"] == ""

    # Differencing every coarser site export against every finer one leaves nothing over.
    for coarse, fine in (("1h", "15m"), ("1d", "15m"), ("1d", "1h")):
        assert _residuals(by_site[coarse], by_site[fine], _within(coarse, tz)) == [], \
            f"{coarse} minus published {fine} recovers a suppressed cell"
    # Room level against site level, bucket by bucket and across widths.
    for width, rows in by_room.items():
        per_bucket: dict[datetime, Counter[str]] = defaultdict(Counter)
        for row in rows:
            per_bucket[row["start"]].update(_figures(row))
        as_site = [{"start": start, **figures} for start, figures in per_bucket.items()]
        for fine in ("15m", "1h", "1d"):
            if WIDTHS.get(fine, timedelta(days=1)) <= WIDTHS.get(width, timedelta(days=1)):
                assert _residuals(as_site, by_site[fine], _within(width, tz)) == []
    # And the secret itself is in no row of any export: the month's only door opening.
    for rows in (*by_site.values(), *by_room.values()):
        assert sum(int(r["door_open"] or 0) + int(r["door_closed"] or 0) for r in rows) == 0
    assert not [r for r in by_room["15m"] if r["start"] == secret]  # no room row for it
    # The coarser buckets say how many of their quarters are missing.
    [hour] = [r for r in by_site["1h"] if r["start"] == secret]
    assert hour["quarters_suppressed"] == "1" and hour["suppressed"] == "0"
    assert all(r["rooms_contributing"] == "6" for r in by_site["1h"])


def test_raising_k_cannot_be_differenced_against_the_default(
        ev_http: httpx.Client, six_flats: SiteProfile, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    site = six_flats.site
    default = _rows(ev_http, evaluator, site, *OCTOBER, bucket="1d")
    higher = _rows(ev_http, evaluator, site, *OCTOBER, bucket="1d", k=7)  # all suppressed
    assert all(r["suppressed"] == "1" for r in higher)
    assert sum(int(r["door_open"] or 0) for r in default + higher) == 0


def test_overlapping_periods_do_not_link_room_pseudonyms(
        ev_http: httpx.Client, six_flats: SiteProfile, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    site = six_flats.site
    # Overlapping periods that are not whole months are refused (they would cut a block).
    straddling = export(ev_http, evaluator, [site], date(2026, 10, 10), date(2026, 11, 9),
                        level="room", bucket="1h")
    assert straddling.status_code == 422, straddling.text
    assert "from=2026-10-01 to=2026-11-30" in straddling.json()["detail"]

    october = _rows(ev_http, evaluator, site, *OCTOBER, level="room", bucket="1h")
    both = _rows(ev_http, evaluator, site, date(2026, 10, 1), date(2026, 11, 30),
                 level="room", bucket="1h")

    def key(row: Row) -> tuple[str, ...]:
        return (row["bucket"], *(row[name] for name in KIND_COLUMNS))

    # The linkage attack: identical rows in the overlap name the same room in both exports.
    named = {key(row): row["room"] for row in october}
    links = {(named[key(row)], row["room"]) for row in both if key(row) in named}
    assert len(links) == 6
    assert all(a == b for a, b in links), "a room got two linkable pseudonyms"
    in_october = [row for row in both if row["start"].month == 10]
    assert in_october == october  # the same rows under the same names: nothing new
    # Across months the pseudonyms are unrelated, and row order does not carry them over.
    november = {row["room"] for row in both if row["start"].month == 11}
    assert len(november) == 6 and not november & {row["room"] for row in october}
    buckets: dict[str, list[str]] = defaultdict(list)
    for row in both:
        buckets[row["bucket"]].append(row["room"])
    assert all(rooms == sorted(rooms) for rooms in buckets.values())


def test_an_export_of_today_or_later_is_refused(
        ev_http: httpx.Client, six_flats: SiteProfile, make_user: Callable[..., Account],
        headers_for: Headers) -> None:
    evaluator = headers_for(make_user("evaluator"))
    site = six_flats.site
    today = datetime.now(ZoneInfo(six_flats.tz)).date()
    for first, last in ((today, today), (today - timedelta(days=3), today),
                        (today + timedelta(days=1), today + timedelta(days=2))):
        refused = export(ev_http, evaluator, [site], first, last, bucket="15m")
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"]
        assert detail.startswith("Perioden når ind i en nat, der ikke er slut")
        assert "only nights that have ended can be exported" in detail
    result = CliRunner().invoke(app, [
        "export", "--site", site, "--from", today.isoformat(), "--to", today.isoformat(),
        "--out", "-"])
    assert result.exit_code == 1
    assert "only nights that have ended can be exported" in result.output


@pytest.mark.parametrize("asked,months", [
    ((date(2026, 10, 10), date(2026, 11, 9)), (date(2026, 10, 1), date(2026, 11, 30))),
    ((date(2026, 12, 31), date(2026, 12, 31)), (date(2026, 12, 1), date(2026, 12, 31))),
    ((date(2028, 2, 3), date(2028, 2, 3)), (date(2028, 2, 1), date(2028, 2, 29))),
    ((date(2026, 11, 1), date(2026, 11, 30)), (date(2026, 11, 1), date(2026, 11, 30))),
])
def test_room_level_periods_are_widened_to_whole_months_in_the_refusal(
        asked: tuple[date, date], months: tuple[date, date]) -> None:
    widened = Period(*asked).whole_months()
    assert (widened.first, widened.last) == months
    assert widened.is_whole_months and Period(*asked).is_whole_months == (asked == months)


def test_a_night_is_exportable_from_the_moment_it_ends(
        db: psycopg.Connection, six_flats: SiteProfile) -> None:
    period = Period(ATTACK_NIGHT, ATTACK_NIGHT)
    request = OccupancyRequest((six_flats.site,), period, Level.SITE, Bucket.QUARTER)
    [site] = load_sites(db, [six_flats.site])
    ends = six_flats.night_window(ATTACK_NIGHT)[1]
    assert ends == datetime(2026, 10, 15, 5, 0, tzinfo=UTC)  # 07:00 summer time
    with pytest.raises(NightNotEnded, match="give to=2026-10-13 or earlier"):
        prepare_export(db, request, ExportFormat.CSV, now=ends - timedelta(seconds=1))
    assert site.last_complete_day(ends) == ATTACK_NIGHT
    prepare_export(db, request, ExportFormat.CSV, now=ends)


def test_room_level_needs_a_reason_and_the_reason_is_audited(
        ev_http: httpx.Client, db: psycopg.Connection, six_flats: SiteProfile,
        make_user: Callable[..., Account], headers_for: Headers, tmp_path: Any) -> None:
    account = make_user("evaluator")
    evaluator = headers_for(account)
    site = six_flats.site
    for reason in (None, "", "because"):
        refused = export(ev_http, evaluator, [site], *OCTOBER, level="room", reason=reason)
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"].startswith("Eksport pr. rum kræver en begrundelse")
    assert export(ev_http, evaluator, [site], *OCTOBER, level="room").status_code == 200
    [(detail,)] = db.execute("SELECT detail FROM audit_log WHERE actor = %s "
                             "AND action = 'export.occupancy'", (account.username,)).fetchall()
    assert detail["level"] == "room" and detail["reason"] == REASON

    args = ["export", "--site", site, "--from", OCTOBER[0].isoformat(),
            "--to", OCTOBER[1].isoformat(), "--level", "room", "--out", str(tmp_path / "x.zip")]
    without = CliRunner().invoke(app, args)
    assert without.exit_code == 1 and "needs a reason" in without.output
    audited = CliRunner().invoke(app, [*args, "--reason", "handover study, flats 1-6"])
    assert audited.exit_code == 0, audited.output
    rows = db.execute("SELECT detail FROM audit_log WHERE actor = 'cli' AND site = %s "
                      "AND action = 'export.occupancy'", (site,)).fetchall()
    assert [d["reason"] for (d,) in rows if d["level"] == "room"] == ["handover study, flats 1-6"]
