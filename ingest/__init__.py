"""The store: schema, migrations, the batched event writer and queries.

It knows events, sites, rooms and devices; it knows nothing of MQTT or the web.
"""

from core.events import (
    DeviceKind,
    DeviceSource,
    Event,
    EventKind,
    Presence,
    RoomKind,
    StatusChange,
)

__all__ = [
    "DeviceKind", "DeviceSource", "Event", "EventKind", "Presence", "RoomKind", "StatusChange",
]
