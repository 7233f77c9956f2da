"""Benchmark: how soon a disabled user's open board stream is closed.

    python -m bench.revocation [--runs N]

Against the local stack (``core.settings.get_settings()``; migrates it first). Starts the
real API in a thread on a free port (uvicorn, as the tests do), and for each run: adds an
account, logs it in, opens the live stream (token in the first message) and reads its
hello and snapshot, then an admin disables the account over HTTP; the time from the
admin's 200 to the stream's close frame (4401) is one sample. Streams learn of a revoked
token from one read of the accounts' versions per second per process
(``api.revocation.POLL_S``), so samples fall between 0 and about one second. The last
line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx
import psycopg
from websockets.exceptions import ConnectionClosed

from api.users import create_user
from core.settings import get_settings
from ingest.migrate import upgrade
from tests.support.api import PASSWORD, ApiServer, open_stream
from tests.support.store import unique


def _login(http: httpx.Client, username: str) -> str:
    response = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    settings = get_settings()
    upgrade(settings.sqlalchemy_url())
    server = ApiServer(settings)
    server.start()
    samples: list[float] = []
    try:
        with psycopg.connect(settings.resolved_database_url(), autocommit=True) as db, \
                httpx.Client(base_url=server.url, timeout=10) as http:
            admin = unique("bench-admin")
            create_user(db, admin, PASSWORD, "admin", [])
            headers = {"Authorization": f"Bearer {_login(http, admin)}"}
            for _ in range(args.runs):
                user = unique("bench-user")
                create_user(db, user, PASSWORD, "admin", [])
                with open_stream(server.ws_url, _login(http, user)) as stream:
                    stream.recv(timeout=10)  # hello
                    stream.recv(timeout=10)  # snapshot
                    http.post(f"/api/v1/users/{user}/disable",
                              headers=headers).raise_for_status()
                    started = time.monotonic()
                    try:
                        while True:
                            stream.recv(timeout=10)  # pings until the close
                    except ConnectionClosed as closed:
                        if closed.rcvd is None or closed.rcvd.code != 4401:
                            raise SystemExit(f"the stream closed without 4401: {closed}") \
                                from None
                    samples.append(time.monotonic() - started)
    finally:
        server.stop()
    print(json.dumps({"runs": len(samples), "median_s": round(statistics.median(samples), 3),
                      "max_s": round(max(samples), 3)}))


if __name__ == "__main__":
    main()
