"""Revoked tokens end open WebSocket streams too, within about a second.

A REST request checks its token against the account on every call (``api.deps``); a live
stream authenticates once and then stays open all night, so one ``AccountWatch`` per
process reads every enabled account's ``token_version`` and the enrolled boards not
revoked once per ``POLL_S`` (only while
streams are open: one small query per second per process, not one per board) and each
stream asks it whether its token still holds after every read.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.concurrency import run_in_threadpool

from api.security import TokenClaims
from ingest.boards import live_board_ids
from ingest.users import token_versions

log = logging.getLogger(__name__)

POLL_S = 1.0


class AccountWatch:
    """The accounts' token versions as of the last read, shared by the process's streams."""

    def __init__(self, pool: ConnectionPool, poll_s: float = POLL_S) -> None:
        self._pool = pool
        self._poll_s = poll_s
        self._versions: dict[int, int] = {}
        self._boards: set[int] = set()
        self._read_started = 0.0  # monotonic time the last successful read began
        self._polled = asyncio.Event()
        self.watching = 0  # open streams; nothing is read while there are none

    def _read(self) -> tuple[dict[int, int], set[int]]:
        with self._pool.connection() as conn:
            return token_versions(conn), live_board_ids(conn)

    async def run(self) -> None:
        failing = False
        while True:
            if self.watching:
                started = time.monotonic()
                try:
                    versions, boards = await run_in_threadpool(self._read)
                except (psycopg.Error, OSError, PoolTimeout) as exc:
                    # Keep the streams: the fan-out closes them itself if the database
                    # stays away, and a board must not go deaf on a hiccup.
                    if not failing:
                        log.warning("cannot read token versions (%s); open streams are "
                                    "checked again when the database answers", exc)
                    failing = True
                except Exception:
                    # Never let the watch die: revoked streams would then stay open.
                    log.exception("reading token versions failed; trying again")
                    failing = True
                else:
                    failing = False
                    self._versions, self._boards = versions, boards
                    self._read_started = started
                    polled, self._polled = self._polled, asyncio.Event()
                    polled.set()
            await asyncio.sleep(self._poll_s)

    async def next_read(self) -> None:
        """Return after the next successful read of the versions."""
        await self._polled.wait()

    def revoked(self, claims: TokenClaims, authenticated_at: float) -> bool:
        """Whether the last read shows the token dead (account gone, disabled, or at
        another version). A read that began before the stream authenticated says
        nothing about it (the account may be newer than the read)."""
        if self._read_started < authenticated_at:
            return False
        if claims.board_id is not None:
            return claims.board_id not in self._boards
        if claims.user_id is None:
            return True
        return self._versions.get(claims.user_id) != claims.version
