"""A planned night: what each device publishes, and when, in simulated time.

Plans are plain values made by ``behaviour``; the publisher only replays them. ``at`` is
the simulated moment of publishing (UTC); an event's own ``ts`` (inside ``payload``) may
differ from it by clock skew, a network delay, or because it is a duplicate resend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from core.events import Presence
from simulators.ground_truth import Episode

__all__ = ["Delivery", "EventDelivery", "NightPlan", "StatusDelivery", "event_topic",
           "status_topic"]


def event_topic(site: str, device: str) -> str:
    return f"nattero/v1/{site}/{device}/events"


def status_topic(site: str, device: str) -> str:
    return f"nattero/v1/{site}/{device}/status"


@dataclass(frozen=True, slots=True)
class EventDelivery:
    """One QoS 1 publish of a protocol v1 event payload (``id``, ``ts``, ``kind``, ``battery``;
    a bed sensor's heartbeat also ``occupied``)."""

    at: datetime
    site: str
    device: str
    payload: dict[str, Any]
    duplicate: bool = False
    delayed: bool = False

    @property
    def topic(self) -> str:
        return event_topic(self.site, self.device)


@dataclass(frozen=True, slots=True)
class StatusDelivery:
    """A retained ``online``/``offline`` on the device's status topic."""

    at: datetime
    site: str
    device: str
    presence: Presence

    @property
    def topic(self) -> str:
        return status_topic(self.site, self.device)


Delivery = EventDelivery | StatusDelivery


@dataclass(frozen=True, slots=True)
class NightPlan:
    """One site's night (``start``–``end``, the night window), or the day after it.

    ``paced`` segments are replayed at the chosen speed; the day between two nights holds
    only heartbeats and is published as fast as the broker takes it.
    """

    site: str
    night: date
    start: datetime
    end: datetime
    deliveries: tuple[Delivery, ...]
    episodes: tuple[Episode, ...] = ()
    paced: bool = True
    # Events the network lost (never published); kept so a run can say how many.
    lost: tuple[EventDelivery, ...] = ()

    @property
    def events(self) -> int:
        return sum(1 for d in self.deliveries if isinstance(d, EventDelivery))
