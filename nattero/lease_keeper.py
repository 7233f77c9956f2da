"""A `nattero pipeline` worker that shares the sites with other workers through leases.

With ``NATTERO_PIPELINE_LEASES=true`` each site is owned by exactly one worker at a time
(``ingest.leases``). The keeper's thread runs a round every ``lease_renew_s``:

1. renew every lease it holds; a lease that was taken over (or that it could not renew
   for a whole ``lease_ttl_s``, the database being away) is lost: the site's pipeline is
   stopped at once;
2. take free sites (never held, or expired) among those it may own
   (``NATTERO_GATEWAY_SITES``, empty: all), at most ``lease_max_sites``, and start a
   pipeline for each.

A site's pipeline is today's gateway + rules restricted to that one site, with two
differences: its MQTT session has a client id of its own (the gateway's id plus the site),
so the session, and the messages the broker queued in it, follow the lease to whichever
worker holds it; and its writes are fenced (``LeaseFence``): a worker that was paused past
its lease and taken over cannot commit, and so acknowledges nothing. The new owner rebuilds
the site's rules from the store first (the replay every start does), then takes the
session over: what the old owner committed is in the replay, what it did not is redelivered.

Why not MQTT shared subscriptions: see ``docs/workers.md``.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import psycopg

from core.settings import Settings
from gateway.service import Gateway
from ingest import leases
from ingest.leases import Lease, LeaseFence
from ingest.writer import StoreUnavailable
from rules.runtime import RulesRuntime

log = logging.getLogger(__name__)

# Sites whose pipelines a keeper starts at once (each in a thread of its own while it
# waits for its replay); the leases of a batch are taken just before it starts.
START_AT_ONCE = 8

__all__ = ["LeaseKeeper", "SiteService", "default_worker_id", "site_client_id"]


class SiteService(Protocol):
    """What the keeper runs for one site it owns."""

    @property
    def fatal(self) -> Exception | None: ...

    @property
    def connected(self) -> bool: ...  # its MQTT session is connected and subscribed

    def stop(self) -> None: ...


# (settings, the lease, its fence) -> the site's running service
StartSite = Callable[[Settings, Lease, LeaseFence], SiteService]


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


def site_client_id(base: str, site: str) -> str:
    """The MQTT client id of ``site``'s session: the same on every worker, so a new owner
    resumes the old owner's session (and the messages queued in it)."""
    return f"{base}-site-{site}"


@dataclass
class _SitePipeline:
    """Gateway + rules for one leased site."""

    gateway: Gateway
    rules: RulesRuntime

    @property
    def fatal(self) -> Exception | None:
        return self.gateway.fatal

    @property
    def connected(self) -> bool:
        return self.gateway.connected

    def stop(self) -> None:
        self.rules.request_stop()  # as Pipeline.stop: the writer commits what it has at once
        self.gateway.stop()
        self.rules.stop()


def start_site_pipeline(settings: Settings, lease: Lease, fence: LeaseFence) -> SiteService:
    """Rebuild ``lease.site``'s rules from the store, then take its MQTT session over."""
    site_settings = settings.model_copy(update={
        "gateway_sites": [lease.site],
        "gateway_client_id": site_client_id(settings.resolved_gateway_client_id(), lease.site),
        # Bridged payloads are not per site: a leased worker serves native devices only.
        "gateway_bridges": False,
    })
    began = time.monotonic()
    rules = RulesRuntime(settings.resolved_database_url(), sites=[lease.site],
                         budget_s=settings.rules_batch_budget_s,
                         future_skew=timedelta(seconds=settings.event_future_skew_s),
                         fence=fence)
    rules.load()
    gateway = Gateway(site_settings, hooks=[rules.on_batch], fence=fence)
    rules.start()
    # Not waiting for the broker: the keeper's other leases must be renewed meanwhile.
    gateway.start(wait_connected_s=0)
    log.info("site %r: rules rebuilt and its session opening after %.2f s", lease.site,
             time.monotonic() - began)
    return _SitePipeline(gateway, rules)


@dataclass
class _Held:
    lease: Lease
    fence: LeaseFence
    service: SiteService
    renewed: float = field(default_factory=time.monotonic)  # monotonic, last renewal


class LeaseKeeper:
    """Takes and renews site leases and runs a pipeline for each site it owns."""

    def __init__(self, settings: Settings, *, owner: str | None = None,
                 start_site: StartSite = start_site_pipeline) -> None:
        self._settings = settings
        self._dsn = settings.resolved_database_url()
        self.owner = owner or settings.worker_id or default_worker_id()
        self._ttl = timedelta(seconds=settings.lease_ttl_s)
        self._every = settings.lease_renew_s
        self._wanted = list(settings.gateway_sites)  # empty: share all
        self._max = settings.lease_max_sites
        self._start_site = start_site
        self._held: dict[str, _Held] = {}
        self._conn: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fatal: Exception | None = None

    # -- one round ----------------------------------------------------------------------
    def run_once(self) -> None:
        """Renew, drop what was lost, then take and start what is free."""
        try:
            conn = self._connection()
            self._renew(conn)
            self._take(conn)
        except (psycopg.Error, StoreUnavailable) as exc:
            self._close()
            log.warning("lease round failed (%s); retrying in %g s", exc, self._every)
            self._drop_overdue()
        for held in list(self._held.values()):
            if held.service.fatal is not None:
                self.fatal = held.service.fatal
                self._stop.set()

    def _renew(self, conn: psycopg.Connection) -> None:
        if not self._held:
            return
        renewed = leases.renew_all(conn, [held.lease for held in self._held.values()],
                                   self._ttl)
        now = time.monotonic()
        for site, held in list(self._held.items()):
            lease = renewed.get(site)
            if lease is None:
                log.warning("lease of site %r was taken over by another worker; stopping "
                            "its pipeline", site)
                self._lose(site)
            else:
                held.lease, held.renewed = lease, now

    def _drop_overdue(self) -> None:
        # The database is away: past its time to live a lease may have been taken over
        # already; stop serving the site rather than fight the new owner for its session.
        now = time.monotonic()
        for site, held in list(self._held.items()):
            if now - held.renewed >= self._ttl.total_seconds():
                log.warning("lease of site %r could not be renewed for %s; stopping its "
                            "pipeline", site, self._ttl)
                self._lose(site)

    def _take(self, conn: psycopg.Connection) -> None:
        free = [site for site in self._wanted or leases.all_sites(conn)
                if site not in self._held]
        while free and not self._stop.is_set():
            room = self._max - len(self._held) if self._max else len(free)
            batch: list[tuple[Lease, LeaseFence]] = []
            while free and len(batch) < min(START_AT_ONCE, room):
                lease = leases.acquire(conn, free.pop(0), self.owner, self._ttl)
                if lease is not None:
                    batch.append((lease, LeaseFence({lease.site: lease.token},
                                                    hold_limit=self._ttl)))
            if room <= 0:
                return
            if batch:
                self._start_batch(conn, batch)
                # Starting takes a while (the rules' replays): renew the others now.
                self._renew(conn)

    def _start_batch(self, conn: psycopg.Connection,
                     batch: list[tuple[Lease, LeaseFence]]) -> None:
        """Start the pipelines of leases just taken, several at once: a site's start mostly
        waits for the database (its replay), and a takeover of many sites must not take
        the sum of those waits."""
        for lease, _ in batch:
            log.info("took the lease of site %r (token %d); starting its pipeline",
                     lease.site, lease.token)
        failure: Exception | None = None
        with ThreadPoolExecutor(max_workers=len(batch),
                                thread_name_prefix="site-start") as pool:
            started = [(lease, fence, pool.submit(self._start_site, self._settings, lease,
                                                  fence))
                       for lease, fence in batch]
            unstarted: list[Lease] = []
            for lease, fence, future in started:
                try:
                    service = future.result()
                except StoreUnavailable as exc:
                    log.warning("could not start site %r (%s); releasing its lease",
                                lease.site, exc)
                    unstarted.append(lease)
                    continue
                except Exception as exc:
                    log.error("could not start site %r; releasing its lease", lease.site,
                              exc_info=exc)
                    unstarted.append(lease)  # another worker may manage where this one cannot
                    failure = failure or exc
                    continue
                # Held before any release below can fail: a started site is never lost
                # track of (its pipeline is stopped with the others').
                self._held[lease.site] = _Held(lease, fence, service)
        for lease in unstarted:
            leases.release(conn, lease)
        if failure is not None:
            raise failure

    def _lose(self, site: str) -> None:
        held = self._held.pop(site)
        held.fence.drop(site)
        held.service.stop()

    # -- lifecycle ----------------------------------------------------------------------
    def service(self, site: str) -> SiteService | None:
        held = self._held.get(site)
        return None if held is None else held.service

    def owned(self) -> dict[str, int]:
        """The sites this worker serves now, with their fencing tokens."""
        return {site: held.lease.token for site, held in self._held.items()}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # a bug or a setting that no retry fixes: end the worker
                log.exception("lease keeper failed; stopping this worker")
                self.fatal = exc
                self._stop.set()
                return
            self._stop.wait(self._every)

    def wait(self) -> None:
        """Block until stopped; raises the fatal error of a site's gateway if there was one."""
        while not self._stop.wait(0.5):
            pass
        if self.fatal:
            raise self.fatal

    def stop(self, release: bool = True) -> None:
        """Stop every site's pipeline; ``release`` hands the leases over at once (a clean
        stop), otherwise they expire (what a crash leaves)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        for site in list(self._held):
            held = self._held.pop(site)
            held.service.stop()
            if release:
                try:
                    leases.release(self._connection(), held.lease)
                except (psycopg.Error, StoreUnavailable) as exc:
                    log.warning("could not release the lease of site %r (%s); it expires "
                                "by itself", site, exc)
        self._close()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            try:
                # A keeper paused in the middle of a renewal holds the lease row's lock,
                # and with it every takeover: the server ends such a transaction.
                limit_ms = int(self._ttl.total_seconds() * 1000)
                self._conn = psycopg.connect(
                    self._dsn, autocommit=True, connect_timeout=3,
                    options=f"-c idle_in_transaction_session_timeout={limit_ms}")
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(str(exc).strip()) from exc
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
