"""The store: schema, migrations, the batched event writer, and every query of Nattero.

Other packages never write SQL: they call a typed query function here, in the module named
for what it serves (``users``, ``sites``, ``layouts``, ``devices``, ``alerts``, ``audit``,
``occupancy``, ``evaluation``, ``scoring``, ``health``, ``bootstrap``, ...);
``tests/test_architecture.py`` checks it. It knows events, sites, rooms and devices; it
knows nothing of MQTT or the web, and imports nothing of the project but ``core``.
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
