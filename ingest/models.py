"""SQLAlchemy 2 models of the schema. Alembic migrations in ``ingest/migrations`` create it.

``events`` is a TimescaleDB hypertable partitioned on ``ts``; its unique key includes ``ts``
because TimescaleDB requires the partitioning column in every unique index. A republished
event carries the same id and ts, so it is still stored once.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    Time,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.night_window import DEFAULT_TIME_ZONE


class Base(DeclarativeBase):
    pass


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    tz: Mapped[str] = mapped_column(Text, default=DEFAULT_TIME_ZONE)
    night_start: Mapped[time] = mapped_column(Time, default=time(22, 0))
    night_end: Mapped[time] = mapped_column(Time, default=time(7, 0))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Room(Base):
    __tablename__ = "rooms"
    site: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)
    # For a flat: the common room its door opens onto (migration 0009); None: not known.
    corridor: Mapped[str | None] = mapped_column(Text, nullable=True)
    __table_args__ = (CheckConstraint("kind in ('flat','common','exit')", name="room_kind"),)


class MonitoringBasisRecord(Base):
    """Why a flat may be monitored: the resident's consent or a municipal decision."""

    __tablename__ = "room_bases"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(Text)
    room: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    recorded_by: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        ForeignKeyConstraint(["site", "room"], ["rooms.site", "rooms.id"], ondelete="CASCADE"),
        CheckConstraint("kind in ('consent','decision')", name="basis_kind"),
    )


class Device(Base):
    __tablename__ = "devices"
    site: Mapped[str] = mapped_column(Text, primary_key=True)
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    room: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    heartbeat_s: Mapped[int] = mapped_column(Integer, default=300)
    source: Mapped[str] = mapped_column(Text, default="native")
    external_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    mapping: Mapped[str | None] = mapped_column(Text, nullable=True)
    mqtt_username: Mapped[str | None] = mapped_column(Text, nullable=True)
    presence: Mapped[str] = mapped_column(Text, default="unknown")
    presence_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    battery: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    last_event_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_received_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (
        ForeignKeyConstraint(["site", "room"], ["rooms.site", "rooms.id"]),
        CheckConstraint("kind in ('door','bed','motion','exit','staff')", name="device_kind"),
        CheckConstraint("source in ('native','zigbee2mqtt','chirpstack')", name="device_source"),
        UniqueConstraint("source", "external_id", name="device_external_id"),
    )


class StoredEvent(Base):
    __tablename__ = "events"
    site: Mapped[str] = mapped_column(Text, primary_key=True)
    device: Mapped[str] = mapped_column(Text, primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    room: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    battery: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeadLetter(Base):
    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    sender: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload_length: Mapped[int | None] = mapped_column(Integer, nullable=True)


class DeadLetterMinute(Base):
    """Dead letters of one sender in one UTC minute: all are counted, the first few stored."""

    __tablename__ = "dead_letter_minutes"
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    sender: Mapped[str] = mapped_column(Text, primary_key=True)
    received: Mapped[int] = mapped_column(Integer)
    stored: Mapped[int] = mapped_column(Integer)
    suppressed: Mapped[int] = mapped_column(Integer, Computed("received - stored", persisted=True))
