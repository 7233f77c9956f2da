"""Staff on the floor (issue 13 §3): who walks a corridor at 03:00 is not always a resident.

Night staff tell the board "I am going round the common rooms" or "I am going into flat
7" (``api.routes.staff``). Each is a ``StaffRound``: a window of event time for the site's
common rooms (``room`` None) or for one flat. The rules read them through
``SiteContext.staff_in``:

- motion in a common room during a round of the common rooms is staff: no situation of
  its own (it still keeps the room's last motion, for the corridor evidence);
- a flat's door opening while staff go into that flat is staff, not the resident leaving
  or coming home: the flat's outing is neither started nor ended by it.

A round is the staff member's word, so it only ever quiets what staff would themselves
cause (motion, a door they open); a bed leaving its resident or a building exit still
counts. Rounds are stored, so a replay of the night reads them as the live night did.

A site can also wire it (the protocol's staff presence): a device of kind ``staff`` — a
staff-room door contact, or a staff tag reader — is staff on the floor whenever it sends
an event. In a flat it is a round into that flat; anywhere else a round of the common
rooms; each lasts ``STAFF_DEVICE_PRESENCE`` from the device's latest event. Its events are
stored like any other, so the night's log and a replay have them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["STAFF_DEVICE_PRESENCE", "StaffRound"]

STAFF_DEVICE_PRESENCE = timedelta(minutes=15)  # as long as a round announced on the board


@dataclass(frozen=True, slots=True)
class StaffRound:
    room: str | None  # None: the site's common rooms
    start: datetime
    end: datetime

    def covers(self, room: str | None, ts: datetime) -> bool:
        """Whether this round has staff in ``room`` (None: a common room) at ``ts``."""
        return self.room == room and self.start <= ts < self.end
