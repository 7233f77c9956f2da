"""Rooms and devices of one site from a CSV file, all or nothing.

For ``nattero site import SITE FILE.csv`` and the admin page's import form. The first line
names the columns, in Danish or English (any order; only ``rum``/``room`` is required)::

    rum;rumtype;betegnelse;sensor;sensortype;hjerteslag
    f12;lejlighed;Lejlighed 12;f12-door;dør;300
    f12;;;f12-bed;seng;
    stue;fællesrum;Dagligstue;stue-pir;bevægelse;

Each line is a room, and optionally one device in it; a room on several lines is one room
(its type and label must agree). A room that exists already is used as it is. Commas or
semicolons (Danish Excel) both work; types may be written in Danish or English.

Every line is checked - against the file and against what is stored - before anything is
written; if any is bad, nothing is, and every bad line is reported (``ImportRefused``).
Otherwise all rooms and devices are written in one transaction, and the devices' broker
accounts created in it by ``provisioning.sites.insert_device`` (the same code as ``nattero
device add``). The broker has no transactions: if anything fails after an account was
created, the accounts created so far are deleted again before the error is raised.
This module never records a basis (a flat's legal basis is recorded one by one, on
purpose) and never changes an existing room or device.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.events import DeviceKind, RoomKind, fits_in, room_kinds_for
from core.i18n import Localizer, mark
from core.settings import Settings
from ingest import layouts
from ingest.db import Session, session_scope
from provisioning.broker_accounts import BrokerAccountError
from provisioning.errors import ProvisioningError
from provisioning.names import ID_SLUG, DeviceCredentials, device_topic_prefix
from provisioning.sites import WRONG_ROOM_KIND, broker_accounts, insert_device, insert_room

__all__ = ["MAX_LINES", "ImportProblem", "ImportRefused", "ImportedSite", "import_csv"]

log = logging.getLogger(__name__)

MAX_LINES = 5000
MAX_LABEL = 200
DEFAULT_HEARTBEAT_S = 300

# Column -> the names a header may give it (Danish first).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "room": ("rum", "room"),
    "room_kind": ("rumtype", "room_kind", "type", "kind"),
    "label": ("betegnelse", "label"),
    "device": ("sensor", "device"),
    "device_kind": ("sensortype", "device_kind"),
    "heartbeat": ("hjerteslag", "heartbeat", "heartbeat_s"),
}
_HEADER = {name: column for column, names in _COLUMNS.items() for name in names}
_ROOM_KINDS = {"lejlighed": RoomKind.FLAT, "fællesrum": RoomKind.COMMON,
               "udgang": RoomKind.EXIT, **{kind.value: kind for kind in RoomKind}}
_DEVICE_KINDS = {"dør": DeviceKind.DOOR, "seng": DeviceKind.BED,
                 "bevægelse": DeviceKind.MOTION, "yderdør": DeviceKind.EXIT,
                 "personale": DeviceKind.STAFF,
                 **{kind.value: kind for kind in DeviceKind}}
_ROOM_KIND_NAMES = "lejlighed (flat), fællesrum (common), udgang (exit)"
_DEVICE_KIND_NAMES = ("dør (door), seng (bed), bevægelse (motion), yderdør (exit), "
                      "personale (staff)")
EXAMPLE_HEADER = "rum;rumtype;betegnelse;sensor;sensortype;hjerteslag"


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One bad line (``line`` 0: the file as a whole). ``message`` is the English catalogue
    text with ``{name}`` fields filled from ``values``; ``text`` translates it."""

    line: int
    message: str
    values: dict[str, Any] = field(default_factory=dict)

    def text(self, t: Localizer) -> str:
        problem = t.gettext(self.message, **self.values)
        if self.line == 0:
            return problem
        return t.gettext("line {line}: {problem}", line=self.line, problem=problem)

    def __str__(self) -> str:
        problem = self.message.format(**self.values)
        return problem if self.line == 0 else f"line {self.line}: {problem}"


class ImportRefused(ProvisioningError):
    """The file has bad lines; nothing was written. ``problems`` lists every one."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        super().__init__(f"nothing was imported; {len(problems)} problem(s): "
                         + "; ".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class _Room:
    line: int
    id: str
    kind: RoomKind | None
    label: str | None


@dataclass(frozen=True, slots=True)
class _Device:
    line: int
    id: str
    room: str
    kind: DeviceKind
    heartbeat_s: int


@dataclass
class ImportedSite:
    """What an import wrote (or, for a dry run, would write). ``credentials``: the new
    devices' broker accounts, shown once and stored nowhere."""

    site: str
    dry_run: bool
    broker: str  # where the devices connect: mqtt(s)://host:port
    rooms_added: list[str] = field(default_factory=list)
    rooms_found: list[str] = field(default_factory=list)
    devices_added: list[str] = field(default_factory=list)
    credentials: dict[str, DeviceCredentials] = field(default_factory=dict)

    def topic(self, device: str) -> str:
        return f"{device_topic_prefix(self.site, device)}/events"


def import_csv(settings: Settings, site: str, text: str, *, dry_run: bool = False,
               actor: str = "cli") -> ImportedSite:
    """Add the rooms and devices ``text`` lists to ``site``, all or none.

    Raises ``ImportRefused`` (nothing written) listing every bad line, ``ProvisioningError``
    for a site that does not exist, ``BrokerAccountError`` when the broker fails (the
    accounts created so far deleted again, nothing written)."""
    problems: list[ImportProblem] = []
    rooms, devices = _read(text, problems)
    result = ImportedSite(site, dry_run, settings.device_broker())
    created: list[str] = []
    try:
        with session_scope(settings.sqlalchemy_url()) as session:
            if not layouts.site_exists(session, site):
                raise ProvisioningError(f"site {site!r} does not exist; add it first")
            _check_against_store(session, site, rooms, devices, problems, result)
            if problems:
                raise ImportRefused(sorted(problems, key=lambda problem: problem.line))
            if dry_run:
                result.devices_added = [device.id for device in devices]
                return result
            for room in rooms:
                if room.id in result.rooms_added:
                    assert room.kind is not None  # checked: a new room has its kind
                    insert_room(session, site, room.id, room.kind, room.label)
            session.flush()  # the devices' checks read the new rooms
            if devices:
                with broker_accounts(settings) as broker:
                    for device in devices:
                        credentials = insert_device(session, broker, site, device.id,
                                                    device.room, device.kind,
                                                    device.heartbeat_s)
                        created.append(credentials.username)
                        result.credentials[device.id] = credentials
                        result.devices_added.append(device.id)
            session.flush()
            log.info("%s imported %d room(s) and %d device(s) into site %s", actor,
                     len(result.rooms_added), len(result.devices_added), site)
    except BaseException:
        # The rows were rolled back with the session; the broker's accounts are not.
        _delete_accounts(settings, created)
        raise
    return result


def _delete_accounts(settings: Settings, usernames: list[str]) -> None:
    if not usernames:
        return
    try:
        with broker_accounts(settings) as broker:
            for username in usernames:
                if broker.account_exists(username):
                    broker.delete_account(username)
    except BrokerAccountError:
        # The rows are gone, so these accounts belong to no device; say which, so an
        # operator can remove them (nattero device revoke cannot: there is no device).
        log.exception("import failed and its broker accounts could not all be deleted: %s",
                      ", ".join(usernames))


# -- reading the file ------------------------------------------------------------------------

def csv_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    """The non-empty, non-comment lines of a CSV text (commas or semicolons) with their
    line numbers, cells stripped."""
    text = text.removeprefix("\ufeff")  # Excel's byte-order mark
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    start = 1
    for row in reader:
        line, start = start, reader.line_num + 1
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        yield line, cells


def _read(text: str, problems: list[ImportProblem]) -> tuple[list[_Room], list[_Device]]:
    """The rooms (first mention of each) and devices ``text`` lists; problems appended."""
    lines = csv_lines(text)
    try:
        header_line, header = next(lines)
    except StopIteration:
        problems.append(ImportProblem(0, mark(
            "the file is empty; its first line names the columns, e.g. {example}"),
            {"example": EXAMPLE_HEADER}))
        return [], []
    except csv.Error as exc:
        problems.append(ImportProblem(0, mark("the file cannot be read as CSV: {reason}"),
                                      {"reason": str(exc)}))
        return [], []
    columns = _header(header_line, header, problems)
    if columns is None:
        return [], []
    rooms: dict[str, _Room] = {}
    devices: dict[str, _Device] = {}
    try:
        for line, cells in lines:
            if line > MAX_LINES:
                problems.append(ImportProblem(line, mark(
                    "the file has more than {limit} lines; split it into several files"),
                    {"limit": MAX_LINES}))
                break
            if len(cells) > len(columns) and any(cells[len(columns):]):
                problems.append(ImportProblem(line, mark(
                    "the line has {found} fields but the first line names {expected} "
                    "columns"), {"found": len(cells), "expected": len(columns)}))
                continue
            row = dict(zip(columns, cells, strict=False))
            _read_line(line, row, rooms, devices, problems)
    except csv.Error as exc:
        problems.append(ImportProblem(0, mark("the file cannot be read as CSV: {reason}"),
                                      {"reason": str(exc)}))
    if not rooms and not problems:
        problems.append(ImportProblem(0, mark("the file names no room; add a line per room "
                                              "under the first line")))
    return list(rooms.values()), list(devices.values())


def _header(line: int, header: list[str],
            problems: list[ImportProblem]) -> list[str] | None:
    columns: list[str] = []
    known = ", ".join(names[0] for names in _COLUMNS.values())
    for name in header:
        column = _HEADER.get(name.lower())
        if column is None:
            problems.append(ImportProblem(line, mark(
                "unknown column '{column}'; the columns are: {columns}"),
                {"column": name, "columns": known}))
        elif column in columns:
            problems.append(ImportProblem(line, mark(
                "column '{column}' is named twice"), {"column": name}))
        columns.append(column or "")
    if "room" not in columns:
        problems.append(ImportProblem(line, mark(
            "the first line must name the columns and include 'rum' (room), e.g. "
            "{example}"), {"example": EXAMPLE_HEADER}))
    return None if problems else columns


def _read_line(line: int, row: dict[str, str], rooms: dict[str, _Room],
               devices: dict[str, _Device], problems: list[ImportProblem]) -> None:
    def problem(message: str, **values: Any) -> None:
        problems.append(ImportProblem(line, message, values))

    room_id = row.get("room", "")
    room_kind_text = row.get("room_kind", "").lower()
    label = row.get("label", "") or None
    if not room_id:
        problem(mark("the room id is missing (column 'rum')"))
        return
    if not ID_SLUG.match(room_id):
        problem(mark("room id '{room}' must be lower-case letters, digits, '.', '_' or '-' "
                     "(at most 63 characters)"), room=room_id)
        return
    room_kind = _ROOM_KINDS.get(room_kind_text)
    if room_kind_text and room_kind is None:
        problem(mark("room type '{kind}' is unknown; use one of: {kinds}"),
                kind=row.get("room_kind", ""), kinds=_ROOM_KIND_NAMES)
    if label is not None and (len(label) > MAX_LABEL
                              or any(ord(char) < 32 or ord(char) == 127 for char in label)):
        problem(mark("the label of room '{room}' is too long or holds control characters "
                     "(at most {limit} characters)"), room=room_id, limit=MAX_LABEL)
    earlier = rooms.get(room_id)
    if earlier is None:
        rooms[room_id] = _Room(line, room_id, room_kind, label)
    else:
        if room_kind is not None and earlier.kind is not None and room_kind is not earlier.kind:
            problem(mark("room '{room}' has the type '{kind}' here but another on line "
                         "{earlier}"), room=room_id, kind=row.get("room_kind", ""),
                    earlier=earlier.line)
        if label is not None and earlier.label is not None and label != earlier.label:
            problem(mark("room '{room}' has the label '{label}' here but another on line "
                         "{earlier}"), room=room_id, label=label, earlier=earlier.line)
        if earlier.kind is None or earlier.label is None:
            rooms[room_id] = _Room(earlier.line, room_id, earlier.kind or room_kind,
                                   earlier.label or label)
    _read_device(line, row, room_id, devices, problem)


def _read_device(line: int, row: dict[str, str], room: str, devices: dict[str, _Device],
                 problem: Callable[..., None]) -> None:
    device_id = row.get("device", "")
    kind_text = row.get("device_kind", "").lower()
    heartbeat_text = row.get("heartbeat", "")
    if not device_id:
        if kind_text or heartbeat_text:
            problem(mark("a sensor type or heartbeat is given but no sensor id "
                         "(column 'sensor')"))
        return
    if not ID_SLUG.match(device_id):
        problem(mark("sensor id '{device}' must be lower-case letters, digits, '.', '_' or "
                     "'-' (at most 63 characters)"), device=device_id)
        return
    kind = _DEVICE_KINDS.get(kind_text)
    if kind is None:
        if kind_text:
            problem(mark("sensor type '{kind}' is unknown; use one of: {kinds}"),
                    kind=row.get("device_kind", ""), kinds=_DEVICE_KIND_NAMES)
        else:
            problem(mark("sensor '{device}' needs a sensor type: {kinds}"),
                    device=device_id, kinds=_DEVICE_KIND_NAMES)
    heartbeat = DEFAULT_HEARTBEAT_S
    if heartbeat_text:
        try:
            heartbeat = int(heartbeat_text)
        except ValueError:
            heartbeat = 0
        if not 10 <= heartbeat <= 86400:
            problem(mark("heartbeat '{value}' must be a whole number of seconds from 10 to "
                         "86400"), value=heartbeat_text)
    earlier = devices.get(device_id)
    if earlier is not None:
        problem(mark("sensor '{device}' is on line {earlier} already"), device=device_id,
                earlier=earlier.line)
    elif kind is not None:
        devices[device_id] = _Device(line, device_id, room, kind, heartbeat)


def _check_against_store(session: Session, site: str, rooms: list[_Room], devices: list[_Device],
                         problems: list[ImportProblem], result: ImportedSite) -> None:
    kinds: dict[str, RoomKind] = {}  # each room's type: as stored, else as the file says
    for room in rooms:
        stored = layouts.room_kind(session, site, room.id)
        if stored is not None:
            kinds[room.id] = RoomKind(stored)
        elif room.kind is not None:
            kinds[room.id] = room.kind
        if stored is None:
            if room.kind is None and not any(p.line == room.line for p in problems):
                problems.append(ImportProblem(room.line, mark(
                    "room '{room}' is new and needs a room type: {kinds}"),
                    {"room": room.id, "kinds": _ROOM_KIND_NAMES}))
            result.rooms_added.append(room.id)
        elif room.kind is not None and stored != room.kind.value:
            problems.append(ImportProblem(room.line, mark(
                "room '{room}' exists already with another type ({stored}); leave the type "
                "out or correct it"), {"room": room.id, "stored": stored}))
        else:
            result.rooms_found.append(room.id)
    for device in devices:
        found = layouts.find_device(session, site, device.id)
        if found is not None and found.active:
            problems.append(ImportProblem(device.line, mark(
                "sensor '{device}' exists already on this site; revoke it first or choose "
                "another id"), {"device": device.id}))
        room_kind = kinds.get(device.room)
        if room_kind is not None and not fits_in(device.kind, room_kind):
            problems.append(ImportProblem(device.line, WRONG_ROOM_KIND, {
                "kind": device.kind.value, "room": device.room, "room_kind": room_kind.value,
                "kinds": room_kinds_for(device.kind)}))
