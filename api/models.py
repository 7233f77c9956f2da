"""Response and request bodies shared by several routes (the API's public shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict

from core.alerts import AlertStatus
from ingest.alerts import AlertSnapshot


class PassedOn(BaseModel):
    """One step of the escalation to people: the call sent on (or not) to a person."""

    step: Literal["second", "coordinator"]
    channel: Literal["email", "push", "none"]  # none: nobody to send it to
    status: Literal["sent", "failed", "nobody", "unreachable", "cancelled"]
    at: datetime
    attempts: int = 0
    error: str | None = None


class Alert(BaseModel):
    """An alert as the board shows it; ``seq`` is the stream position of its last change."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    room: str
    room_label: str | None
    room_kind: Literal["flat", "common", "exit"] | None
    device: str | None
    rule: str
    severity: Literal["notice", "normal", "high"]
    status: AlertStatus
    escalated: bool
    escalated_at: datetime | None
    called_at: datetime | None
    late: bool
    count: int
    first_ts: datetime
    last_ts: datetime
    raised_at: datetime
    detail: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    outcome: str | None
    outcome_note: str | None
    seq: int
    passed_on: list[PassedOn] = []

    @classmethod
    def of(cls, alert: AlertSnapshot) -> Alert:
        return cls.model_validate(alert)


# Identifiers in paths follow provisioning's slugs, so nothing odd reaches SQL.
SITE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
# Free text (names, labels, notes): no control characters. PostgreSQL cannot store NUL, and
# the others have no business on a board or in an audit log.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
SiteId = Annotated[str, Path(pattern=SITE_PATTERN, description="site id, e.g. solsikken")]
RoomId = Annotated[str, Path(pattern=ID_PATTERN, description="room id within the site")]
DeviceId = Annotated[str, Path(pattern=ID_PATTERN, description="device id within the site")]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="alert id")]
