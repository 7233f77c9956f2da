"""What the rules engine asks the alert store to do.

Intents are values: ``rules`` makes them and ``ingest`` applies them (in the writer's
transaction, or the rules ticker's own), so the store never imports the rules. Each
carries a stable identity so the store can apply it idempotently when a restart replays
stored events:

- ``episode_key`` names one alert episode: ``{site}/{room}/{rule}/{start}`` for resident
  rules, ``{site}/{room}/{rule}/{device}/{start}`` for technical ones, ``start`` being the
  UTC ISO instant the episode began. One alert per episode.
- ``event_key`` names what triggered: ``{site}/{device}/{event id}`` for an event, or a
  derived key for a timer or status change. A ``Trigger`` whose episode already exists
  with another ``event_key`` is a merge (the alert's count grows); the same
  (episode_key, event_key) twice is the same trigger.
- An ``Escalate`` or ``Clear`` is identified by its ``episode_key`` alone.

Calls and quiet situations. A ``Trigger`` with ``call=True`` makes its alert a *call to go*
(``alerts.called_at``); one with ``call=False`` raises or grows a quiet situation, shown
quietly and never sounded. An ``Escalate`` always makes a call (the allowed time passed).
A ``Clear`` of a resident rule closes a quiet situation that ended by itself ("returned by
itself", outcome ``cleared_automatically``); a situation that became a call is left for
staff to resolve.

``late`` marks an intent about a situation that was already over, or a timer that fired
after its deadline, because the facts arrived late (see ``rules.engine``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.alerts import RuleName, Severity

__all__ = ["Clear", "Escalate", "Intent", "Trigger", "identity"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """Raise an alert for ``episode_key``, or merge into it if it is already there.

    A merge with a higher ``severity`` raises the alert's severity; ``call`` makes the
    alert a call at ``ts`` if it is not one already."""

    site: str
    room: str
    device: str
    rule: RuleName
    severity: Severity
    ts: datetime
    episode_key: str
    event_key: str
    late: bool
    detail: str
    call: bool = False


@dataclass(frozen=True, slots=True)
class Escalate:
    """The episode's alert crossed its escalation deadline (``ts`` is the deadline)."""

    site: str
    room: str
    rule: RuleName
    episode_key: str
    ts: datetime
    late: bool


@dataclass(frozen=True, slots=True)
class Clear:
    """The condition behind the episode's alert has ended by itself (device back, battery
    ok, the resident back in the flat within the allowed time)."""

    site: str
    room: str
    device: str
    rule: RuleName
    episode_key: str
    ts: datetime


Intent = Trigger | Escalate | Clear


def identity(intent: Intent) -> tuple[str, str, str]:
    """The stable identity of an intent, as the store deduplicates it."""
    if isinstance(intent, Trigger):
        return ("trigger", intent.episode_key, intent.event_key)
    if isinstance(intent, Escalate):
        return ("escalate", intent.episode_key, "")
    return ("clear", intent.episode_key, "")
