"""Site leases: which worker owns a site's events and alerts now, with a fencing token.

A lease is a row of ``site_leases`` (migration 0015): its owner, until when it holds (on
the database's clock: the workers' clocks never decide who owns a site) and the token of
the current tenure, drawn from a sequence on every takeover, so it only ever grows.

- ``acquire`` takes a site that is free (no row, or its lease expired); ``renew`` extends
  a lease the caller still holds with the same token; ``release`` ends it early (a worker
  that stops cleanly hands its sites over at once instead of after the expiry).
- ``LeaseFence`` is the check *inside* a writing transaction, its last statement before
  the commit: it locks the lease rows of the sites written for ``FOR SHARE`` and compares
  the tokens. A takeover (an ``UPDATE`` of the row) therefore waits for a writer that
  already passed the check, and a writer that comes after the takeover sees the new token
  and fails with ``LeaseLost``: a paused old owner cannot commit once its lease was taken
  over, whatever its own clock says. Checked last, the share lock is held only for the
  commit; and a writer paused in the middle of a transaction is ended by the server
  (``idle_in_transaction_session_timeout``, the lease's time to live, ``prepare``), so it
  cannot keep a takeover, or other workers' alerts, waiting for longer than that.
  ``acquire`` waits at most ``LOCK_WAIT`` for the row and otherwise tries again in the
  next round.

Only tokens are compared, not the expiry: a lease that expired but was not taken over is
still the writer's alone (nobody else holds a token for the site), and refusing it would
make a late renewal cost a redelivery for nothing.

Never used by the default single worker: it writes unfenced and never reads this table.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from ingest.writer import StoreUnavailable

__all__ = ["Lease", "LeaseFence", "LeaseLost", "acquire", "all_sites", "leases",
           "live_owners", "release", "renew", "renew_all"]


class LeaseLost(StoreUnavailable):
    """This worker no longer holds the lease of a site it tried to write for (another
    worker took it over). Nothing of the transaction was committed and nothing may be
    acknowledged; the worker stops serving the site, and the broker redelivers the
    site's messages to the new owner. Retrying is safe (it fails the same way)."""


@dataclass(frozen=True, slots=True)
class Lease:
    site: str
    owner: str
    token: int
    expires_at: datetime


_ACQUIRE = """
INSERT INTO site_leases AS l (site, owner, token, acquired_at, expires_at)
SELECT s.id, %(owner)s, nextval('site_lease_token'), now(), now() + %(ttl)s
FROM sites s WHERE s.id = %(site)s
ON CONFLICT (site) DO UPDATE
    SET owner = excluded.owner, token = excluded.token, acquired_at = excluded.acquired_at,
        expires_at = excluded.expires_at
    WHERE l.expires_at <= now()
RETURNING site, owner, token, expires_at
"""

# Only the holder of this very tenure renews: a lease that expired keeps its token until
# someone else takes it, so a late renewal of a lease nobody took over still succeeds.
_RENEW = """
UPDATE site_leases SET expires_at = now() + %(ttl)s
WHERE site = %(site)s AND owner = %(owner)s AND token = %(token)s
RETURNING site, owner, token, expires_at
"""

# Several of one owner's leases in one statement; the rows are locked in site order, as
# the fence locks them, so a renewal and a writer never wait for each other in a cycle.
_RENEW_MANY = """
WITH mine AS (
    SELECT l.site FROM site_leases l
    JOIN unnest(%(sites)s::text[], %(tokens)s::bigint[]) AS h(site, token)
      ON l.site = h.site AND l.token = h.token
    WHERE l.owner = %(owner)s ORDER BY l.site FOR UPDATE OF l
)
UPDATE site_leases l SET expires_at = now() + %(ttl)s FROM mine WHERE l.site = mine.site
RETURNING l.site, l.owner, l.token, l.expires_at
"""

_RELEASE = """
UPDATE site_leases SET expires_at = now()
WHERE site = %(site)s AND owner = %(owner)s AND token = %(token)s
"""

LOCK_WAIT = "1s"  # how long ``acquire`` waits for a row a writer holds (see above)

_FENCE = """
SELECT site, token FROM site_leases WHERE site = ANY(%s) ORDER BY site FOR SHARE
"""


def _lease(row: tuple[str, str, int, datetime] | None) -> Lease | None:
    return None if row is None else Lease(row[0], row[1], int(row[2]), row[3])


def acquire(conn: psycopg.Connection, site: str, owner: str, ttl: timedelta) -> Lease | None:
    """Take ``site`` for ``owner`` with a new token if it is free (never held, or expired);
    None if another owner holds it (or the site does not exist). Commits."""
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            row = conn.execute(_ACQUIRE, {"site": site, "owner": owner, "ttl": ttl}).fetchone()
    except psycopg.errors.LockNotAvailable:
        return None  # a writer holds the row (its commit, or paused): the next round
    return _lease(row)


def renew(conn: psycopg.Connection, lease: Lease, ttl: timedelta) -> Lease | None:
    """Extend ``lease`` by ``ttl`` from now; None if it was taken over (lost). Commits."""
    with conn.transaction():
        row = conn.execute(_RENEW, {"site": lease.site, "owner": lease.owner,
                                    "token": lease.token, "ttl": ttl}).fetchone()
    return _lease(row)


def renew_all(conn: psycopg.Connection, held: Iterable[Lease], ttl: timedelta
              ) -> dict[str, Lease]:
    """``renew`` for every lease of ``held`` (one owner's) in one round trip: the renewed
    ones by site; a site missing from the answer was taken over (lost). Commits."""
    held = list(held)
    if not held:
        return {}
    owners = {lease.owner for lease in held}
    if len(owners) != 1:
        raise ValueError(f"renew_all renews one owner's leases, not {sorted(owners)}")
    with conn.transaction():
        rows = conn.execute(_RENEW_MANY, {
            "sites": [lease.site for lease in held], "tokens": [lease.token for lease in held],
            "owner": owners.pop(), "ttl": ttl}).fetchall()
    return {row[0]: Lease(row[0], row[1], int(row[2]), row[3]) for row in rows}


def release(conn: psycopg.Connection, lease: Lease) -> None:
    """End ``lease`` now (its site is free for any worker at once). Commits."""
    with conn.transaction():
        conn.execute(_RELEASE, {"site": lease.site, "owner": lease.owner,
                                "token": lease.token})


def leases(conn: psycopg.Connection) -> list[Lease]:
    """Every site's lease row, expired ones included, by site."""
    with conn.transaction():
        rows = conn.execute("SELECT site, owner, token, expires_at FROM site_leases "
                            "ORDER BY site").fetchall()
    return [Lease(site, owner, int(token), expires) for site, owner, token, expires in rows]


def live_owners(conn: psycopg.Connection) -> set[str]:
    """The workers that hold at least one lease that has not expired."""
    with conn.transaction():
        rows = conn.execute("SELECT DISTINCT owner FROM site_leases "
                            "WHERE expires_at > now()").fetchall()
    return {owner for (owner,) in rows}


def all_sites(conn: psycopg.Connection) -> list[str]:
    """Every provisioned site, by id (what a worker that shares all sites competes for)."""
    with conn.transaction():
        rows = conn.execute("SELECT id FROM sites ORDER BY id").fetchall()
    return [site for (site,) in rows]


class LeaseFence:
    """The leases a writer may write under: site -> token. Thread-safe (the lease keeper
    changes it while writer threads check it).

    ``check`` runs inside the writer's transaction, first of all its statements: a site
    written for that the fence does not hold, or whose row now carries another token, fails
    the transaction with ``LeaseLost`` (the caller rolls back and acknowledges nothing)."""

    def __init__(self, held: dict[str, int] | None = None,
                 hold_limit: timedelta = timedelta(seconds=15)) -> None:
        # hold_limit: longest a fenced transaction may sit idle (the lease's ttl).
        self._hold_limit_ms = max(int(hold_limit.total_seconds() * 1000), 100)
        self._lock = threading.Lock()
        self._held = dict(held or {})

    def hold(self, site: str, token: int) -> None:
        with self._lock:
            self._held[site] = token

    def drop(self, site: str) -> None:
        with self._lock:
            self._held.pop(site, None)

    def prepare(self, conn: psycopg.Connection) -> None:
        """Limit how long a transaction of this connection may sit idle: a worker paused in
        the middle of one holds its locks (the lease rows after the check, and the
        installation-wide alert change lock, ``ingest.alerts.lock_changes``), which would
        keep a takeover, and every other worker's alerts, waiting. The server ends such a
        transaction (rolled back, the connection closed; the writer reconnects)."""
        conn.execute(f"SET idle_in_transaction_session_timeout = {self._hold_limit_ms}")
        conn.commit()

    def tokens(self) -> dict[str, int]:
        with self._lock:
            return dict(self._held)

    def check(self, conn: psycopg.Connection, sites: Iterable[str]) -> None:
        wanted = sorted(set(sites))
        if not wanted:
            return
        held = self.tokens()
        missing = [site for site in wanted if site not in held]
        if missing:
            raise LeaseLost(f"this worker holds no lease for site(s) {', '.join(missing)}; "
                            "it must not write for them (another worker owns them)")
        # Sorted, FOR SHARE: writers of the same sites never block each other, and a
        # takeover waits until a writer that passed this check has committed.
        rows: dict[str, int] = {site: int(token) for site, token in
                                conn.execute(_FENCE, (wanted,)).fetchall()}
        stale = [site for site in wanted if rows.get(site) != held[site]]
        if stale:
            raise LeaseLost(
                f"the lease of site(s) {', '.join(stale)} was taken over by another worker "
                "(fencing token changed); this worker's write is refused and nothing of it "
                "is stored or acknowledged: the new owner receives the messages")
