"""Benchmark: from an unacknowledged call's escalation deadline to the second person's mail.

    python bench/escalation.py [--runs N] [--check-every S]

Against the local stack (``core.settings.get_settings()``; migrates it first). Starts a real
SMTP server (aiosmtpd) and the real API in a thread on free ports (uvicorn, as the tests
do), with a site at night, its roster and the second person's e-mail. Each run raises an
open call through the store's change path whose deadline for the second person
(``called_at`` + the high severity's minutes) lies 0.5 s plus a random part of the
watch's interval ahead; the time from that
deadline to the mail's arrival at the SMTP server is one sample. The escalation watch looks
every ``--check-every`` seconds (default: the installation's setting, 2 s), so samples lie
between the send time and about that interval. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.escalation import nights_around
from api.users import create_user
from core.alerts import AlertChange
from core.settings import get_settings
from ingest import roster
from ingest.alerts import record_change
from ingest.migrate import upgrade
from tests.support.api import PASSWORD, ApiServer, free_port
from tests.support.store import unique

MINUTES = 2.0  # the second person's wait for a high call in this bench
ADDRESS = "anden@plejehjem.test"


class Inbox:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        for line in content.decode(errors="replace").splitlines():
            if line.startswith("X-Nattero-Key:"):
                self.arrived[line.split(":", 1)[1].strip()] = time.time()
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--check-every", type=float, default=None)
    args = parser.parse_args()
    base = get_settings()
    upgrade(base.sqlalchemy_url())
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    settings = base.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
        "escalation_second_minutes": {**base.escalation_second_minutes, "high": MINUTES},
        "escalation_coordinator_minutes": {**base.escalation_coordinator_minutes,
                                           "high": 60.0},
        **({} if args.check_every is None else {"escalation_check_every_s": args.check_every})})
    server = ApiServer(settings)
    server.start()
    samples: list[float] = []
    try:
        with psycopg.connect(settings.resolved_database_url(), autocommit=True) as db:
            import provisioning
            from core.events import RoomKind

            now = datetime.now(UTC)
            site = unique("bench-esc")
            night = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=3):%H:%M}"
            provisioning.add_site(settings, site, "Solsikken", tz="UTC", night=night)
            provisioning.add_room(settings, site, "f1", RoomKind.FLAT, "Lejlighed 1")
            second = unique("bench-second")
            create_user(db, second, PASSWORD, "staff", [site])
            roster.set_contact(db, second, ADDRESS)
            roster.set_roster(db, site, nights_around(now, "UTC", night)[0], duty=None,
                              second=second, coordinator=None, set_by="bench")
            for _ in range(args.runs):
                # A deadline at a random phase of the watch's rounds, as a real call's is.
                ahead = 0.5 + random.uniform(0, settings.escalation_check_every_s)
                deadline = datetime.now(UTC) + timedelta(seconds=ahead)
                called = deadline - timedelta(minutes=MINUTES)
                with db.transaction():
                    row = db.execute(
                        "INSERT INTO alerts (site, room, rule, severity, episode_key, "
                        "first_ts, last_ts, detail, called_at) VALUES (%s, 'f1', "
                        "'building_exit', 'high', %s, %s, %s, '', %s) RETURNING id",
                        (site, unique(f"{site}:bench"), called, called, called)).fetchone()
                    assert row is not None
                    record_change(db, int(row[0]), AlertChange.RAISED)
                key = f"escalation:{row[0]}:second"
                give_up = time.monotonic() + 60
                while key not in inbox.arrived:
                    if time.monotonic() > give_up:
                        raise SystemExit(f"no mail for alert {row[0]} within 60 s")
                    time.sleep(0.01)
                samples.append(inbox.arrived[key] - deadline.timestamp())
    finally:
        server.stop()
        smtp.stop()
    print(json.dumps({"runs": len(samples), "check_every_s": settings.escalation_check_every_s,
                      "median_s": round(statistics.median(samples), 3),
                      "max_s": round(max(samples), 3), "min_s": round(min(samples), 3)}))


if __name__ == "__main__":
    main()
