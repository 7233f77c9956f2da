"""The replay on start leaves out what cannot matter: a quiet device's plain heartbeats.

A takeover of 50 sites replayed ~12,000 stored events per site, nearly all heartbeats, in
0.5 s a site. A device that was never silent for its allowed silence over the window, with
no low battery and no event stored in another room, is *quiet*: each of its plain heartbeats
only re-armed its silence timer, so the rules are given its last sign of life instead
(``ingest.rules_store.QuietDevices``, ``RulesEngine.resume_devices``). Everything the check
is unsure of is replayed in full.

The oracle is the full replay: the same stored night, loaded with and without leaving
anything out, must give the same alerts and the same changes. Real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

import provisioning
from core.events import DeviceKind, Event, EventKind, RoomKind
from core.settings import StackInfo, get_settings
from ingest.rules_store import QuietDevices, Replay, RulesStore
from ingest.writer import Batch, EventWriter, StoredEventRow
from rules.runtime import GRACE, HISTORY, REPLAY, RulesRuntime
from rules.settings import LOW_BATTERY_BELOW
from tests.support.store import unique
from tests.test_clock import Wall, _layouts

W = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 14:00 in Copenhagen: no resident rules
START = W - timedelta(hours=6)
BEAT = timedelta(seconds=300)  # every device's heartbeat; allowed silence: 10 min
DEVICES = [("f1-door", "f1", DeviceKind.DOOR), ("f1-bed", "f1", DeviceKind.BED),
           ("exit-door", "exit", DeviceKind.EXIT), ("lounge-pir", "lounge", DeviceKind.MOTION)]


def _night(site: str) -> list[tuple[Event, datetime]]:
    """Six hours of a site's stored events, each arrived 0.2 s after its stamp."""
    events: list[Event] = []

    def beats(device: str, first: datetime, count: int, *, lost: Sequence[int] = (),
              battery: dict[int, int] | None = None, occupied: bool | None = None) -> None:
        for k in range(count):
            if k not in lost:
                events.append(Event(site, device, f"hb{k}", first + k * BEAT,
                                     EventKind.HEARTBEAT, (battery or {}).get(k), occupied))

    # Quiet: beats exactly every interval (a lost one would be a silence of exactly the
    # allowed length, which fires), last one at W - 5 min; and its door was used.
    beats("f1-door", START, 72, battery={10: 80, 40: 79})
    events += [Event(site, "f1-door", "open", W - timedelta(hours=2), EventKind.DOOR_OPEN),
               Event(site, "f1-door", "shut", W - timedelta(hours=2) + timedelta(seconds=20),
                     EventKind.DOOR_CLOSED)]
    # One heartbeat lost: silent for exactly its allowed silence, an offline alert.
    beats("f1-bed", START + timedelta(seconds=40), 72, lost=[30], occupied=False)
    # A low battery reading in the window.
    beats("exit-door", START + timedelta(seconds=80), 72,
          battery={20: 40, 50: LOW_BATTERY_BELOW - 3, 51: LOW_BATTERY_BELOW - 3})
    # First heard 25 min after the site's first event: unheard for longer than allowed.
    beats("lounge-pir", START + timedelta(minutes=25), 67)
    return [(event, event.ts + timedelta(seconds=0.2)) for event in events]


@pytest.fixture
def night(site: str, migrated: StackInfo,
          add_device: Callable[..., tuple[str, str]]) -> Callable[[str], None]:
    def store(at_site: str) -> None:
        for device, room, kind in DEVICES:
            add_device(at_site, device, room, kind)
        writer = EventWriter(migrated.database_url)  # no rules: what a dead worker left
        try:
            writer.write(Batch(events=_night(at_site)))
        finally:
            writer.close()
    return store


def _alerts(db: psycopg.Connection, site: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT device, rule, first_ts, status FROM alerts WHERE site = %s "
        "ORDER BY device, rule, first_ts", (site,)).fetchall()


def _changes(db: psycopg.Connection, site: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT alert->>'device', alert->>'rule', change, (alert->>'late')::boolean "
        "FROM alert_changes WHERE site = %s ORDER BY alert->>'device', alert->>'rule', seq",
        (site,)).fetchall()


def _full_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    real = RulesStore.replay

    def everything(self: RulesStore, sites: Sequence[str], window: timedelta,
                   not_after: datetime, quiet: QuietDevices | None = None) -> Replay:
        return real(self, sites, window, not_after, None)

    monkeypatch.setattr(RulesStore, "replay", everything)


def test_a_replay_that_leaves_out_quiet_heartbeats_gives_the_full_replays_alerts(
        site: str, migrated: StackInfo, db: psycopg.Connection,
        night: Callable[[str], None], monkeypatch: pytest.MonkeyPatch) -> None:
    full = unique("t")
    settings = get_settings()
    provisioning.add_site(settings, full, "Testhjemmet")
    for room, kind in (("f1", RoomKind.FLAT), ("lounge", RoomKind.COMMON),
                       ("exit", RoomKind.EXIT)):
        provisioning.add_room(settings, full, room, kind, room)
    night(site)
    night(full)

    quick = RulesRuntime(migrated.database_url, wall=Wall(W), sites=[site])
    quick.load()
    quick.stop()
    with monkeypatch.context() as patch:
        _full_replay(patch)
        slow = RulesRuntime(migrated.database_url, wall=Wall(W), sites=[full])
        slow.load()
        slow.stop()

    assert _alerts(db, site) == _alerts(db, full)
    assert _changes(db, site) == _changes(db, full)
    # And the night had something in it to agree on: the lost beat, the low battery, the
    # device heard late; the quiet door nothing.
    assert [(device, rule, status) for device, rule, _, status in _alerts(db, site)] == [
        ("exit-door", "low_battery", "open"),
        ("f1-bed", "sensor_offline", "resolved"),
        ("lounge-pir", "sensor_offline", "resolved")]
    # The quiet door's 70 other heartbeats were not given to the engine.
    # (The first is: a site's clock starts with its first event, and the unheard devices'
    # deadlines with it.)
    assert _steps(site, migrated) < _steps(full, migrated, everything=True) - 60


def _steps(site: str, migrated: StackInfo, everything: bool = False) -> int:
    """Inputs the engine applies when ``site`` is loaded (``everything``: no quiet device)."""
    with pytest.MonkeyPatch.context() as patch:
        if everything:
            _full_replay(patch)
        rules = RulesRuntime(migrated.database_url, wall=Wall(W), sites=[site])
        rules.load()
        rules.stop()
        return rules._engine.steps(site)


def test_the_store_leaves_out_only_the_quiet_devices_plain_heartbeats(
        site: str, migrated: StackInfo, night: Callable[[str], None]) -> None:
    night(site)
    silence = timedelta(minutes=10)
    quiet = QuietDevices([(site, device, room, silence) for device, room, _ in DEVICES],
                         trusted_from=W - HISTORY + timedelta(minutes=2),
                         future_skew=timedelta(minutes=2), battery_below=LOW_BATTERY_BELOW)
    store = RulesStore(migrated.database_url)
    try:
        replay = store.replay([site], REPLAY, W + timedelta(minutes=2), quiet)
        # A device stored in another room than the rules give it now is replayed in full.
        moved = QuietDevices([(site, "f1-door", "lounge", silence)], quiet.trusted_from,
                             quiet.future_skew, quiet.battery_below)
        unsure = store.replay([site], REPLAY, W + timedelta(minutes=2), moved)
    finally:
        store.close()
    assert replay.heard == {site: {"f1-door": START + 71 * BEAT}}
    kept = [row.event.id for row in replay.events if row.event.device == "f1-door"]
    assert kept == ["hb0", "open", "shut", "hb71"]
    stored = {device: sum(1 for event, _ in _night(site) if event.device == device)
              for device, _, _ in DEVICES}
    for device in ("f1-bed", "exit-door", "lounge-pir"):
        assert sum(1 for row in replay.events if row.event.device == device) == stored[device]
    assert unsure.heard == {}
    assert sum(1 for row in unsure.events if row.event.device == "f1-door") == stored["f1-door"]


def test_a_quiet_device_after_the_replay_goes_offline_at_its_own_time_not_earlier(
        site: str, migrated: StackInfo, db: psycopg.Connection,
        night: Callable[[str], None]) -> None:
    night(site)
    wall = Wall(W)
    rules = RulesRuntime(migrated.database_url, wall=wall, sites=[site])
    rules.load()
    try:
        last = START + 71 * BEAT  # W - 5 min: due offline at W + 5 min
        # A heartbeat of three hours ago, delivered now (a hub's buffer): evidence of life
        # then, which must not bring the silence timer forward to 3 h ago + 10 min.
        late = StoredEventRow(Event(site, "f1-door", "buffered", W - timedelta(hours=3),
                                    EventKind.HEARTBEAT), "f1", W)
        assert rules.on_batch([late], [], _layouts(migrated.database_url)) == []
        wall.at = last + timedelta(minutes=10) - timedelta(seconds=1) + GRACE
        rules.tick()
        assert ("f1-door", "sensor_offline") not in {
            (device, rule) for device, rule, _, _ in _alerts(db, site)}
        wall.at = last + timedelta(minutes=10) + GRACE
        rules.tick()
        assert ("f1-door", "sensor_offline", last + timedelta(minutes=10), "open") in \
            _alerts(db, site)
    finally:
        rules.stop()
