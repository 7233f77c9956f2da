"""The last state each bridge device reported, so only a *change* becomes an event.

Bridges report levels, not edges: Zigbee2MQTT republishes a device's full state whenever any
attribute changes (battery, linkquality...), and LoRaWAN sensors repeat their state in every
periodic uplink. Nattero's events are edges (``door.open`` once, when it opens), so an
adapter passes what it read through :class:`LastKnownState`, which drops the repeats.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.events import EventKind

# Kinds that describe a level, grouped by what they are a level of.
_LEVEL_OF: dict[EventKind, str] = {
    EventKind.DOOR_OPEN: "door",
    EventKind.DOOR_CLOSED: "door",
    EventKind.PRESENCE_ON: "presence",
    EventKind.PRESENCE_OFF: "presence",
    EventKind.BED_ENTER: "bed",
    EventKind.BED_EXIT: "bed",
}


class LastKnownState:
    """Per external id, the last door/presence/bed level seen. Not thread-safe: one per decoder."""

    def __init__(self) -> None:
        self._levels: dict[str, dict[str, EventKind]] = {}

    def seed(self, external_id: str, last: EventKind) -> None:
        """Restore what the database last stored for a device (after a gateway restart).

        Seeding a momentary kind (``motion``, ``heartbeat``) restores nothing.
        """
        level = _LEVEL_OF.get(last)
        if level is not None:
            self._levels.setdefault(external_id, {})[level] = last

    def last(self, external_id: str, level: str) -> EventKind | None:
        """The last ``door``/``presence``/``bed`` kind seen for a device, if any."""
        return self._levels.get(external_id, {}).get(level)

    def changes(self, external_id: str, read: Iterable[EventKind]) -> list[EventKind]:
        """The kinds in ``read`` that are news, and remember them.

        A level kind equal to the last one is a repeat and dropped. ``motion`` read together
        with a repeated ``presence.on`` is the same ongoing movement, so it is dropped too;
        ``motion`` on its own (a motion counter) is always news.
        """
        kinds = list(read)
        levels = self._levels.setdefault(external_id, {})
        repeats = {k for k in kinds if k in _LEVEL_OF and levels.get(_LEVEL_OF[k]) == k}
        news: list[EventKind] = []
        for kind in kinds:
            level = _LEVEL_OF.get(kind)
            if level is not None:
                if kind in repeats:
                    continue
                levels[level] = kind
            elif kind is EventKind.MOTION and EventKind.PRESENCE_ON in repeats:
                continue
            news.append(kind)
        return news
