"""Leased workers across a database outage (issue 18: alerts within 15 s of when they were
due, even across a failover).

A failover takes ten seconds and more, longer than a lease. The workers stopped every site
they could not renew for a lease's time, and whichever reached the new primary first took
them all over, each with a replay, while their messages waited. Now a site past its lease
is paused (its session left, its rules kept) and resumes when its lease renews, and a
worker back from an outage takes no other worker's site for a lease's time.

The outage is real: the keepers reach PostgreSQL through a TCP proxy the test cuts
(connections reset, new ones refused) and restores.
"""

from __future__ import annotations

import time

import psycopg

from core.events import DeviceKind
from core.settings import Settings, StackInfo
from ingest.leases import Lease, LeaseFence
from nattero.lease_keeper import OUTAGE_RETRY_S, LeaseKeeper, SiteService, StartSite
from tests.support.devices import DeviceClient, event_payload
from tests.support.proxy import CuttableProxy
from tests.support.store import unique
from tests.support.waiting import wait_until

TTL_S = 2.0


def settings_for(site: str, database_url: str) -> Settings:
    return Settings(database_url=database_url, gateway_sites=[site],
                    gateway_client_id=unique("gw"), gateway_session_expiry_s=600,
                    gateway_bridges=False, pipeline_leases=True, lease_ttl_s=TTL_S,
                    lease_renew_s=0.5, maintenance="off",
                    # Long pauses between a writer's retries: the resume must end them.
                    ingest_retry_max_s=5)


def events_stored(db: psycopg.Connection, site: str) -> int:
    row = db.execute("SELECT count(*) FROM events WHERE site = %s", (site,)).fetchone()
    assert row is not None
    return int(row[0])


def test_an_outage_longer_than_the_lease_pauses_the_site_and_its_owner_resumes_it(
        db, site, add_device, stack: StackInfo) -> None:
    """Both workers are cut off, as in a failover. The owner keeps the site: no takeover,
    no second start, and what the site received during the outage (in the writer's kept
    batch, and in its session at the broker) is stored once, as soon as the database is
    back."""
    user, password = add_device(site, "f1-door", "f1", DeviceKind.DOOR)
    proxy = CuttableProxy.to_database(stack.database_url)
    settings = settings_for(site, proxy.url(stack.database_url))
    owner = LeaseKeeper(settings, owner=unique("owner"))
    other = LeaseKeeper(settings, owner=unique("other"))
    device = DeviceClient(stack.mqtt_host, stack.mqtt_port, user, password)
    try:
        owner.start()
        assert wait_until(lambda: site in owner.owned(), timeout=15)
        service = owner.service(site)
        assert service is not None and wait_until(lambda: service.connected, timeout=15)
        token = owner.owned()[site]
        other.start()

        proxy.cut()
        # Received before the pause: the writer keeps it and retries.
        device.publish_many([(f"nattero/v1/{site}/f1-door/events",
                              event_payload("door.open", event_id="in-the-writer"))])
        assert wait_until(lambda: not service.connected, timeout=TTL_S + 3)  # left
        # Sent while the site is paused: the broker keeps it in the session.
        device.publish_many([(f"nattero/v1/{site}/f1-door/events",
                              event_payload("door.closed", event_id="in-the-session"))])
        time.sleep(TTL_S)  # both leases' times are over on the database's clock
        proxy.restore()
        back = time.monotonic()

        assert wait_until(lambda: events_stored(db, site) == 2, timeout=10)
        resumed_after = time.monotonic() - back
        assert owner.service(site) is service  # resumed, not started again
        assert owner.owned() == {site: token}  # renewed: nobody took it over
        time.sleep(TTL_S + 1)  # past the other worker's wait after the outage
        assert owner.owned() == {site: token} and other.owned() == {}
        assert events_stored(db, site) == 2
        # The keeper finds the database within OUTAGE_RETRY_S; the writer goes at once.
        assert resumed_after < OUTAGE_RETRY_S + 1.5, f"stored {resumed_after:.1f} s after"
    finally:
        device.close()
        owner.stop()
        other.stop()
        proxy.close()


class RecordingSite:
    """A site's service that records what the keeper told it."""

    fatal = None
    connected = True

    def __init__(self) -> None:
        self.told: list[str] = []

    def pause(self) -> None:
        self.told.append("pause")

    def resume(self) -> None:
        self.told.append("resume")

    def stop(self) -> None:
        self.told.append("stop")


def test_a_worker_cut_off_alone_leaves_the_site_and_stops_it_once_taken_over(
        migrated: StackInfo) -> None:
    """Only this worker lost the database (a partition): another worker takes the site
    over after its lease. The cut-off worker left the site's session (two connections with
    one client id take the session from each other in turn) and, reconnected, finds its
    lease taken and stops the site for good."""
    import provisioning

    site = unique("lo")
    provisioning.add_site(Settings(), site, "Afskåret")
    proxy = CuttableProxy.to_database(migrated.database_url)
    services: dict[str, list[RecordingSite]] = {"cut": [], "direct": []}

    def recording(name: str) -> StartSite:
        def start(settings: Settings, lease: Lease, fence: LeaseFence) -> SiteService:
            services[name].append(RecordingSite())
            return services[name][-1]
        return start

    cut_off = LeaseKeeper(settings_for(site, proxy.url(migrated.database_url)),
                          owner=unique("cut"), start_site=recording("cut"))
    direct = LeaseKeeper(settings_for(site, migrated.database_url), owner=unique("direct"),
                         start_site=recording("direct"))
    try:
        cut_off.start()
        assert wait_until(lambda: site in cut_off.owned(), timeout=10)
        direct.start()
        proxy.cut()
        assert wait_until(lambda: site in direct.owned(), timeout=TTL_S + 5)
        assert services["cut"][0].told == ["pause"]
        proxy.restore()
        assert wait_until(lambda: cut_off.owned() == {}, timeout=5)
        assert services["cut"][0].told == ["pause", "stop"]  # never resumed
        assert len(services["cut"]) == 1 and len(services["direct"]) == 1
    finally:
        cut_off.stop()
        direct.stop()
        proxy.close()
