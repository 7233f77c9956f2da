"""The morning handover: one page on how the night went at one site, for the day shift.

For staff of the site (room labels are shown; there are no names anywhere in Nattero).
Lists the night's alerts and outcomes by room, the flats with complete night rest, and
the sensors that were offline or silent during the night window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Any

import psycopg

from core.alerts import DEVICE_RULES, RuleName
from evaluation.occupancy import DISTURBANCES
from evaluation.period import SiteInfo, load_sites
from ingest import evaluation as stored
from ingest.sites import device_kinds, room_labels


@dataclass(frozen=True, slots=True)
class HandoverAlert:
    room: str
    rule: str
    count: int
    raised: datetime
    outcome: str
    minutes_to_acknowledge: float | None


@dataclass(frozen=True, slots=True)
class SensorProblem:
    room: str
    device_kind: str
    problem: str  # "offline" (alert) or "silent" (no event in the night window)
    since: datetime | None
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Handover:
    site: SiteInfo
    night: date
    start: datetime
    end: datetime
    alerts: list[HandoverAlert]
    rested: list[str]
    flats_reporting: int
    sensors: list[SensorProblem]
    generated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"site": self.site.id, "night": self.night.isoformat(),
                "alerts": len(self.alerts), "rested": self.rested,
                "flats_reporting": self.flats_reporting,
                "sensors": [{"room": s.room, "kind": s.device_kind, "problem": s.problem}
                            for s in self.sensors]}


def last_night(conn: psycopg.Connection, site: SiteInfo, now: datetime | None = None) -> date:
    """The latest night with events (the one just ended, in the morning)."""
    moment = now or datetime.now(UTC)
    latest = stored.latest_event_ts(conn, site.id, moment)
    return site.night_of(latest if latest is not None else moment)


def _label(labels: dict[str, str], room: str) -> str:
    return labels.get(room, room)


def build_handover(conn: psycopg.Connection, site_id: str, night: date | None = None) -> Handover:
    site = load_sites(conn, [site_id])[0]
    night = night or last_night(conn, site)
    start, end = site.night_window(night)
    noon = datetime.combine(night, time(12), site.tz)
    labels = room_labels(conn, site.id)
    rows = stored.handover_alerts(conn, site.id, noon, noon + timedelta(days=1))
    alerts: list[HandoverAlert] = []
    sensors: list[SensorProblem] = []
    alerted: set[str] = set()
    kinds = device_kinds(conn, site.id)
    for room, rule, count, raised, acked, outcome, status, device, first_ts, resolved in rows:
        if rule == RuleName.SENSOR_OFFLINE:
            sensors.append(SensorProblem(_label(labels, room), kinds.get(device or "", "?"),
                                         "offline", first_ts, resolved))
            continue
        if rule not in DEVICE_RULES:
            alerted.add(room)
        alerts.append(HandoverAlert(
            _label(labels, room), rule, count, raised, outcome or status,
            None if acked is None else round((acked - raised).total_seconds() / 60, 1)))
    flats = stored.flats_disturbed(conn, site.id, start, end, DISTURBANCES)
    rested = sorted((_label(labels, room) for room, disturbed in flats
                     if not disturbed and room not in alerted), key=_natural)
    silent = stored.silent_devices(conn, site.id, start, end)
    sensors += [SensorProblem(_label(labels, room), kind, "silent", None, None)
                for room, kind in silent]
    return Handover(site, night, start, end, alerts, rested, len(flats), sensors,
                    datetime.now(UTC))


def _natural(label: str) -> tuple[str, int]:
    head = label.rstrip("0123456789")
    tail = label[len(head):]
    return head, int(tail) if tail else -1


def render_handover(h: Handover) -> str:
    tz = h.site.tz

    def clock(moment: datetime | None) -> str:
        return "–" if moment is None else moment.astimezone(tz).strftime("%H:%M")

    alert_rows = "".join(
        f"<tr><td>{escape(a.room)}</td><td>{escape(a.rule.replace('_', ' '))}</td>"
        f"<td>{clock(a.raised)}</td><td>{a.count}</td>"
        f"<td>{'–' if a.minutes_to_acknowledge is None else a.minutes_to_acknowledge}</td>"
        f"<td>{escape(a.outcome.replace('_', ' '))}</td></tr>" for a in h.alerts)
    sensor_rows = "".join(
        f"<tr><td>{escape(s.room)}</td><td>{escape(s.device_kind)}</td>"
        f"<td>{escape(s.problem)}</td><td>{clock(s.since)}–{clock(s.until)}</td></tr>"
        for s in h.sensors)
    return f"""<!doctype html>
<html lang="da"><head><meta charset="utf-8">
<title>Overlevering – {escape(h.site.name)} – nat {h.night}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:900px;margin:1.5em auto}}
table{{border-collapse:collapse;width:100%;margin-bottom:1em}}td,th{{border:1px solid #ccc;
padding:.2em .5em;text-align:left}}th{{background:#eef}}
@media print{{body{{margin:0}}}}</style></head><body>
<h1>Overlevering / morning handover: {escape(h.site.name)}</h1>
<p>Night {h.night} ({clock(h.start)}–{clock(h.end)}). {len(h.alerts)} alert(s);
{len(h.rested)} of {h.flats_reporting} flats with complete night rest.</p>
<h2>Alerts and outcomes</h2>
<table><tr><th>Room</th><th>Alert</th><th>Raised</th><th>Triggers</th>
<th>Min. to acknowledge</th><th>Outcome</th></tr>{alert_rows or
'<tr><td colspan="6">No alerts this night.</td></tr>'}</table>
<h2>Complete night rest</h2><p>{escape(', '.join(h.rested)) or 'None.'}</p>
<h2>Sensors offline or silent</h2>
<table><tr><th>Room</th><th>Sensor</th><th>Problem</th><th>When</th></tr>{sensor_rows or
'<tr><td colspan="4">All sensors reported.</td></tr>'}</table>
<p style="color:#666;font-size:.85em">Generated {h.generated_at:%Y-%m-%d %H:%M} UTC by
Nattero. Contains room labels only, never names.</p>
</body></html>
"""
