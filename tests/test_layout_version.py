"""The layouts' version (migration 0021): the rules read the layouts again only when it
changed, and it changes with everything they read, not with what the writer touches."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date
from datetime import time as dt_time

import psycopg
import pytest

import ingest.devices as stored_devices
import rules.runtime as runtime
from core.settings import StackInfo
from gateway.registry import DeviceRegistry
from ingest.devices import KnownDevice
from ingest.rule_layouts import read_layouts
from rules.runtime import RulesRuntime
from tests.support.store import unique
from tests.support.waiting import wait_until


def _version(db: psycopg.Connection) -> int:
    row = db.execute("SELECT version FROM layout_version").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def layout(db: psycopg.Connection) -> str:
    site = unique("lv")
    db.execute("INSERT INTO sites (id, name, tz, night_start, night_end) "
               "VALUES (%s, 'V', 'Europe/Copenhagen', '22:00', '07:00')", (site,))
    db.execute("INSERT INTO rooms (site, id, kind, label) VALUES (%s, 'f1', 'flat', 'L 1')",
               (site,))
    db.execute("INSERT INTO devices (site, id, room, kind, heartbeat_s, source) "
               "VALUES (%s, 'd1', 'f1', 'door', 300, 'native')", (site,))
    return site


CHANGES = {
    "site night": "UPDATE sites SET night_start = '21:00' WHERE id = %(s)s",
    "site time zone": "UPDATE sites SET tz = 'UTC' WHERE id = %(s)s",
    "room added": "INSERT INTO rooms (site, id, kind, label) VALUES (%(s)s, 'f2', 'flat', 'L')",
    "room label": "UPDATE rooms SET label = 'Lejlighed 1' WHERE site = %(s)s AND id = 'f1'",
    "basis": "INSERT INTO room_bases (site, room, kind, valid_from, recorded_by) "
             "VALUES (%(s)s, 'f1', 'consent', %(d)s, 'test')",
    "rule setting": "INSERT INTO rule_settings (site, room, rule, minutes, updated_by) "
                    "VALUES (%(s)s, NULL, 'bed_exit_not_back', 12, 'test')",
    "device added": "INSERT INTO devices (site, id, room, kind, heartbeat_s, source) "
                    "VALUES (%(s)s, 'd2', 'f1', 'bed', 300, 'native')",
    "device moved": "UPDATE devices SET room = 'f1' WHERE site = %(s)s AND id = 'd1'",
    "device heartbeat": "UPDATE devices SET heartbeat_s = 60 WHERE site = %(s)s AND id = 'd1'",
    "device revoked": "UPDATE devices SET revoked_at = now() WHERE site = %(s)s AND id = 'd1'",
    "device removed": "DELETE FROM devices WHERE site = %(s)s AND id = 'd1'",
    "device external id": "UPDATE devices SET external_id = 'x-' || %(s)s "
                          "WHERE site = %(s)s AND id = 'd1'",
    "device mapping": "UPDATE devices SET mapping = 'm' WHERE site = %(s)s AND id = 'd1'",
    "device source": "UPDATE devices SET source = 'zigbee2mqtt' "
                     "WHERE site = %(s)s AND id = 'd1'",
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_the_rules_read_bumps_the_version(
        db: psycopg.Connection, layout: str, change: str) -> None:
    before = _version(db)
    db.execute(CHANGES[change], {"s": layout, "d": date.today()})
    assert _version(db) > before


def test_the_writers_updates_and_a_rolled_back_change_leave_it_alone(
        db: psycopg.Connection, layout: str, migrated: StackInfo) -> None:
    before = _version(db)
    db.execute("UPDATE devices SET last_event_at = now(), last_received_at = now(), "
               "battery = 80, presence = 'online', presence_at = now() "
               "WHERE site = %s", (layout,))
    assert _version(db) == before
    with psycopg.connect(migrated.database_url) as other:
        other.execute("UPDATE rooms SET label = 'x' WHERE site = %s", (layout,))
        other.rollback()
    assert _version(db) == before


def test_a_running_engine_reads_the_layouts_again_only_when_they_changed(
        db: psycopg.Connection, layout: str, migrated: StackInfo,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "LAYOUT_TTL_S", 0.1)
    reloads: list[float] = []
    original = RulesRuntime.reload_layouts

    def counted(self: RulesRuntime, *args: object, **kwargs: object) -> None:
        reloads.append(time.monotonic())
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RulesRuntime, "reload_layouts", counted)
    rules = RulesRuntime(migrated.database_url, sites=[layout])
    rules.load()
    rules.start()
    try:
        time.sleep(1.0)  # ten checks, nothing changed
        assert reloads == []
        db.execute("UPDATE sites SET night_start = '21:00' WHERE id = %s", (layout,))
        assert wait_until(lambda: len(reloads) >= 1, 5)
        assert wait_until(lambda: rules._engine.layout(layout).night.start
                          == dt_time(21, 0), 5)
        time.sleep(0.5)
        assert len(reloads) == 1  # once per change
    finally:
        rules.stop()


def test_the_gateways_registry_reads_the_devices_again_only_when_the_version_moved(
        db: psycopg.Connection, layout: str, migrated: StackInfo) -> None:
    """A leased worker runs a gateway per site; each read every device of the installation
    every two seconds (half the CPU of a worker idling with twenty sites)."""
    registry = DeviceRegistry(migrated.database_url, refresh_s=0.0)
    reads: list[int] = []
    real = stored_devices.known_devices

    def counted(conn: psycopg.Connection, sites: Sequence[str] | None = None
                ) -> list[KnownDevice]:
        reads.append(1)
        return real(conn, sites)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(stored_devices, "known_devices", counted)
            registry.reload()
            assert registry.get(layout, "d1") is not None
            for _ in range(5):
                registry.reload_if_stale()
            assert len(reads) == 1  # looked at five times, read once
            db.execute("UPDATE devices SET revoked_at = now() WHERE site = %s AND id = 'd1'",
                       (layout,))
            registry.reload_if_stale()
            assert len(reads) == 2
            found = registry.get(layout, "d1")
            assert found is not None and found.revoked
            # A writer's update of the device's presence is not a change of the registry's.
            db.execute("UPDATE devices SET presence = 'online', presence_at = now() "
                       "WHERE site = %s", (layout,))
            registry.reload_if_stale()
            assert len(reads) == 2
    finally:
        registry.close()


def test_a_leased_sites_registry_keeps_only_its_sites_devices(
        db: psycopg.Connection, layout: str, migrated: StackInfo) -> None:
    """A takeover of 50 sites started 50 gateways, and each read every device of the
    installation. A site's gateway now reads its site's devices; the rare question of a
    dead letter (which other site has a device of this id) still gets its answer."""
    other = unique("lv")
    db.execute("INSERT INTO sites (id, name, tz, night_start, night_end) "
               "VALUES (%s, 'W', 'Europe/Copenhagen', '22:00', '07:00')", (other,))
    db.execute("INSERT INTO rooms (site, id, kind, label) VALUES (%s, 'f9', 'flat', 'L 9')",
               (other,))
    stray = unique("stray")
    db.execute("INSERT INTO devices (site, id, room, kind, heartbeat_s, source) "
               "VALUES (%s, %s, 'f9', 'door', 300, 'native')", (other, stray))
    registry = DeviceRegistry(migrated.database_url, sites=[layout])
    try:
        registry.reload()
        assert registry.get(layout, "d1") is not None
        assert {device.site for device in registry._by_id.values()} == {layout}
        assert registry.sites_of(stray) == [other]
        assert registry.sites_of(unique("nowhere")) == []
    finally:
        registry.close()


def test_a_runtime_of_some_sites_reads_only_their_layouts(
        db: psycopg.Connection, layout: str) -> None:
    """A leased worker starts a runtime per site: each read the whole installation."""
    other = unique("lv")
    db.execute("INSERT INTO sites (id, name, tz, night_start, night_end) "
               "VALUES (%s, 'W', 'UTC', '22:00', '07:00')", (other,))
    db.execute("INSERT INTO rooms (site, id, kind, label) VALUES (%s, 'f1', 'flat', 'L 1')",
               (other,))
    db.execute("INSERT INTO devices (site, id, room, kind, heartbeat_s, source) "
               "VALUES (%s, 'd1', 'f1', 'door', 300, 'native')", (other,))
    mine = read_layouts(db, [layout])
    assert [s.id for s in mine.sites] == [layout]
    assert {r.site for r in mine.rooms} == {d.site for d in mine.devices} == {layout}
    every = read_layouts(db)
    assert {layout, other} <= {s.id for s in every.sites}
    assert {layout, other} <= {d.site for d in every.devices}
