"""``nattero site|room|device|bridge|broker ...``: provisioning a care home from the command
line.

Every change is written to the audit log with actor ``cli:<login>``. A device's or
bridge's password is printed once and stored nowhere but the broker.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from core.errors import NatteroError
from core.events import DeviceKind, DeviceSource, RoomKind
from core.night_window import DEFAULT_NIGHT, DEFAULT_TIME_ZONE
from nattero.commands.audit import cli_actor, record
from nattero.commands.config import connect_store, current_settings
from nattero.commands.evaluation import LanguageName
from nattero.commands.output import JsonOption, date_option, print_record, print_rows, verb_group

if TYPE_CHECKING:
    import psycopg

    from provisioning import DeviceCredentials
    from provisioning.layout import AppliedLayout

__all__ = ["bridge_app", "broker_app", "device_app", "room_app", "site_app"]

site_app = verb_group("Sites: a care home with its time zone and night window.")
room_app = verb_group("Rooms: flats, common rooms and building exits.")
device_app = verb_group("Devices: sensors with their own broker credentials.")
bridge_app = verb_group("Bridges: Zigbee2MQTT and ChirpStack servers, each with its own "
                        "broker account.")
broker_app = verb_group("The broker's device and bridge accounts.")

SiteArgument = Annotated[str, typer.Argument(help="site id, e.g. solsikken")]
SetupDirOption = Annotated[Path | None, typer.Option(
    help="also write each device's setup (broker, topic, username, client id, password) as "
         "nattero-SITE-DEVICE.json and its QR code as .svg into this folder",
    exists=True, file_okay=False, dir_okay=True, writable=True)]
_SHOWN_ONCE = ("the password is shown only this once; store it in the device now, and "
               "make the device connect with exactly this client id (any other is refused)")




def _require_site(conn: psycopg.Connection, site: str) -> None:
    from ingest.sites import site_exists
    from provisioning import ProvisioningError

    if not site_exists(conn, site):
        raise ProvisioningError(
            f"site {site!r} does not exist; `nattero site list` shows the sites, "
            f"`nattero site add {site} --name NAME` adds it")


# -- sites ---------------------------------------------------------------------------------

@site_app.command("add")
def site_add(
    site: Annotated[str, typer.Argument(help="short id, e.g. solsikken")],
    name: Annotated[str, typer.Option(help="display name")],
    tz: Annotated[str, typer.Option(help="IANA time zone")] = DEFAULT_TIME_ZONE,
    night: Annotated[str, typer.Option(help="night window HH:MM-HH:MM")] = DEFAULT_NIGHT,
) -> None:
    """Add a site."""
    from provisioning import add_site

    add_site(current_settings(), site, name, tz, night)
    record("site.add", site, site, {"name": name, "tz": tz, "night": night})
    typer.echo(f"site {site} added")


@site_app.command("set")
def site_set(
    site: SiteArgument,
    name: Annotated[str | None, typer.Option(help="new display name")] = None,
    tz: Annotated[str | None, typer.Option(help="new IANA time zone")] = None,
    night: Annotated[str | None, typer.Option(help="new night window HH:MM-HH:MM")] = None,
) -> None:
    """Change a site's name, time zone or night window (a running engine applies it within
    seconds)."""
    from provisioning import ProvisioningError, change_site

    if name is None and tz is None and night is None:
        raise ProvisioningError("give at least one of --name, --tz, --night")
    before = change_site(current_settings(), site, name=name, tz=tz, night=night)
    after = {key: value for key, value in (("name", name), ("tz", tz), ("night", night))
             if value is not None}
    record("site.change", site, site, {"before": {key: before[key] for key in after},
                                       "after": after})
    typer.echo(f"site {site} changed: " + ", ".join(
        f"{key} {before[key]} -> {value}" for key, value in after.items()))


@site_app.command("delete")
def site_delete(site: SiteArgument) -> None:
    """Delete a site that never recorded anything (no event, alert or round): its rooms,
    devices, rules and boards, then its devices' broker accounts."""
    from ingest.sites import delete_site
    from provisioning import ProvisioningError, delete_device_accounts

    with connect_store() as conn:
        removal, accounts = delete_site(conn, site)
    if removal == "missing":
        raise ProvisioningError(f"site {site!r} does not exist; `nattero site list` shows "
                                "the sites")
    if removal == "has_history":
        raise ProvisioningError(
            f"site {site!r} has recorded events, alerts or rounds, so it stays: its history "
            f"is the pilot's evidence; revoke its devices instead (nattero device revoke)")
    record("site.delete", site, site, {"device_accounts": accounts})
    delete_device_accounts(current_settings(), accounts)
    typer.echo(f"site {site} deleted")


@site_app.command("list")
def site_list(as_json: JsonOption = False) -> None:
    """Sites with their time zone, night window and how many rooms and devices they have."""
    from ingest.listing import site_overview

    with connect_store() as conn:
        found = site_overview(conn)
    print_rows([{"site": s.id, "name": s.name, "tz": s.tz,
                 "night": f"{s.night_start:%H:%M}-{s.night_end:%H:%M}", "rooms": s.rooms,
                 "devices": s.devices} for s in found], as_json)


@site_app.command("baseline")
def site_baseline(
    site: SiteArgument,
    first: Annotated[str | None, typer.Option("--from", help="first night of the baseline, "
                                              "YYYY-MM-DD (evening date)")] = None,
    last: Annotated[str | None, typer.Option("--to", help="last night, inclusive")] = None,
    as_json: JsonOption = False,
) -> None:
    """The site's baseline period: the nights before the sensors went live, when staff log
    their usual rounds on the board ("Runde gået"). Without --from/--to: show it."""
    from ingest.rounds import baseline_period, set_baseline_period
    from provisioning import ProvisioningError

    with connect_store() as conn:
        _require_site(conn, site)
        if first is None and last is None:
            period = baseline_period(conn, site)
            if period is None:
                raise ProvisioningError(f"site {site!r} has no baseline period yet; set it "
                                        f"with: nattero site baseline {site} --from YYYY-MM-DD "
                                        "--to YYYY-MM-DD")
        else:
            start = date_option(first, "--from")
            end = date_option(last, "--to")
            if start is None or end is None or end < start:
                raise ProvisioningError("give both --from and --to, the first night before "
                                        "the last")
            period = set_baseline_period(conn, site, start, end, cli_actor())
            record("site.baseline", site, None, {"first": start.isoformat(),
                                                 "last": end.isoformat()})
    print_record({"site": period.site, "from": period.first.isoformat(),
                  "to": period.last.isoformat(), "set_by": period.set_by}, as_json)


@site_app.command("rounds")
def site_rounds(
    site: SiteArgument,
    file: Annotated[Path, typer.Argument(help="CSV file of rounds; '-' reads stdin",
                                         show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Add rounds staff logged on paper (a baseline before the board was in use).

    \b
    tidspunkt;omfang;rum
    2026-11-16T23:05+01:00;hele stedet;
    2026-11-17T02:10+01:00;etage;gang-1
    2026-11-17T04:00+01:00;lejlighed;f12

    A time carries its UTC offset; omfang (scope) is hele stedet (site, the default),
    etage (floor: a corridor) or lejlighed (flat). Every bad line is reported and nothing
    is stored; a round already stored at the same moment is not stored again.
    """
    from provisioning.rounds_import import import_rounds, read_rounds

    rounds = read_rounds(sys.stdin.read() if str(file) == "-" else _read(file))
    with connect_store() as conn:
        _require_site(conn, site)
        imported = import_rounds(conn, site, rounds, cli_actor())
    print_record(imported.as_dict(), as_json)


@site_app.command("apply")
def site_apply(
    files: Annotated[list[Path], typer.Argument(
        help="YAML files, one site per document ('---' between sites); '-' reads stdin",
        show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Create sites with their rooms, bases and devices from YAML; adds only what is missing.

    \b
    site: solsikken
    name: Bofællesskabet Solsikken
    tz: Europe/Copenhagen            # optional
    night: 22:00-07:00               # optional
    rooms:
      - {id: f12, kind: flat, label: Lejlighed 12, basis: {consent: true}}
      - id: f14
        kind: flat
        basis: {decision: KK-2026-0413, valid_from: 2026-01-01}
      - {id: lounge, kind: common}
    devices:
      - {id: f12-door, room: f12, kind: door, heartbeat: 300}

    The passwords of the devices added are printed once (--json: under "devices").
    """
    from provisioning.layout import PartlyApplied, apply_layout, parse_layouts

    layouts = []
    for path in files:
        if str(path) == "-":
            layouts += parse_layouts(sys.stdin.read(), "stdin")
        else:
            layouts += parse_layouts(_read(path), str(path))
    settings = current_settings()
    done: list[AppliedLayout] = []
    try:
        for layout in layouts:
            try:
                done.append(apply_layout(settings, layout, actor=cli_actor()))
            except PartlyApplied as exc:
                done.append(exc.applied)
                raise
    except NatteroError:
        _report_applied(done, as_json)  # a password not printed now would be lost
        raise
    _report_applied(done, as_json)


@site_app.command("import")
def site_import(
    site: SiteArgument,
    file: Annotated[Path, typer.Argument(
        help="CSV file; first line the columns, e.g. rum;rumtype;betegnelse;sensor;sensortype;"
             "hjerteslag ('-' reads stdin)", show_default=False)],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="check every line and report; write nothing")] = False,
    credentials: Annotated[Path | None, typer.Option(
        help="write the new devices' credentials to this CSV file (readable by you only) "
             "instead of printing them")] = None,
    lang: Annotated[LanguageName, typer.Option(
        "--lang", help="language of the problems reported: da (Danish) or en")] = "da",
    as_json: JsonOption = False,
) -> None:
    """Add a site's rooms and devices from a CSV file: all lines or none.

    \b
    rum;rumtype;betegnelse;sensor;sensortype;hjerteslag
    f12;lejlighed;Lejlighed 12;f12-door;dør;300
    f12;;;f12-bed;seng;
    stue;fællesrum;Dagligstue;stue-pir;bevægelse;

    Each line is a room and optionally one device in it; English column names and types
    (room, room_kind, label, device, device_kind, heartbeat; flat, door, ...) work too.
    Every bad line is reported with its number and nothing is imported.
    """
    from core.i18n import localizer
    from provisioning import ProvisioningError
    from provisioning.csv_import import ImportRefused, import_csv

    text = sys.stdin.read() if str(file) == "-" else _read(file)
    # Created before importing: passwords that cannot be written afterwards would be lost.
    out = None if credentials is None or dry_run else _create_private(credentials)
    try:
        imported = import_csv(current_settings(), site, text, dry_run=dry_run,
                              actor=cli_actor())
    except BaseException as failed:
        if out is not None:
            out.close()
            credentials.unlink()  # type: ignore[union-attr]  # out exists only with a path
        if not isinstance(failed, ImportRefused):
            raise
        refused = failed
        t = localizer(lang)
        for problem in refused.problems:
            typer.secho(problem.text(t), fg=typer.colors.RED, err=True)
        raise ProvisioningError(t.ngettext("nothing was imported: {n} problem in the file",
                                           "nothing was imported: {n} problems in the file",
                                           len(refused.problems))) from None
    rows = [{"device": device, "username": creds.username, "client_id": creds.client_id,
             "password": creds.password, "broker": imported.broker,
             "topic": imported.topic(device)}
            for device, creds in imported.credentials.items()]
    if not dry_run:
        record("site.import", site, site, {"rooms_added": imported.rooms_added,
                                           "devices_added": imported.devices_added})
    if out is not None:
        _write_credentials(out, rows)
    summary = {"site": site, "dry_run": dry_run, "rooms_added": imported.rooms_added,
               "rooms_found": imported.rooms_found, "devices_added": imported.devices_added}
    if as_json:
        print_record({**summary, "credentials": [] if out else rows}, as_json)
        return
    typer.echo(f"site {site}: {len(imported.rooms_added)} room(s) and "
               f"{len(imported.devices_added)} device(s) "
               + ("would be added (dry run: nothing written)" if dry_run else "added"))
    if out is not None:
        typer.echo(f"credentials written to {credentials}", err=True)
    elif rows:
        print_rows(rows, as_json=False)
        typer.echo("the passwords are shown only this once; store them in the devices now, "
                   "each with its client id", err=True)


def _create_private(path: Path) -> TextIO:
    """A new file only its owner can read (it will hold passwords); never overwrites."""
    import os

    from provisioning import ProvisioningError

    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ProvisioningError(f"cannot create {path}: {exc.strerror}; choose a new file "
                                "name (an existing file is never overwritten)") from None
    return os.fdopen(descriptor, "w", encoding="utf-8", newline="")


def _setup_stem(folder: Path, site: str, device: str) -> Path:
    return folder / f"nattero-{site}-{device}"


def _check_setup_free(folder: Path, site: str, devices: list[str]) -> None:
    """Refuse before any password changes: a new password whose file cannot be written
    would be lost."""
    from provisioning import ProvisioningError

    for device in devices:
        for path in (_setup_stem(folder, site, device).with_suffix(suffix)
                     for suffix in (".json", ".svg")):
            if path.exists():
                raise ProvisioningError(f"{path} exists; choose another --setup-dir (an "
                                        "existing file is never overwritten)")


def _write_setup(folder: Path, site: str, device: str, creds: DeviceCredentials) -> None:
    """A device's setup as ``nattero-SITE-DEVICE.json`` and its QR code as ``.svg`` in
    ``folder``: new files only their owner can read (they hold the password)."""
    from provisioning.device_setup import device_setup, setup_qr_file, setup_text

    setup = device_setup(current_settings(), site, device, creds)
    stem = _setup_stem(folder, site, device)
    with _create_private(stem.with_suffix(".json")) as out:
        out.write(setup_text(setup) + "\n")
    with _create_private(stem.with_suffix(".svg")) as out:
        out.write(setup_qr_file(setup))
    typer.echo(f"setup of {device}: {stem}.json and {stem}.svg (QR code)", err=True)


def _write_credentials(out: TextIO, rows: list[dict[str, str]]) -> None:
    import csv

    with out:
        writer = csv.DictWriter(out, fieldnames=["device", "username", "client_id", "password",
                                                 "broker", "topic"])
        writer.writeheader()
        writer.writerows(rows)


def _report_applied(done: list[AppliedLayout], as_json: bool) -> None:
    """Audit and print what was applied, the new devices' passwords included."""
    for applied in done:
        record("site.apply", applied.site, applied.site,
               {"site_added": applied.site_added, "rooms_added": applied.rooms_added,
                "bases_recorded": applied.bases_recorded,
                "rules_set": applied.rules_set,
                "corridors_set": applied.corridors_set,
                "devices_added": applied.devices_added})
    if as_json:
        print_rows([{"site": applied.site, "site_added": applied.site_added,
                     "rooms_added": applied.rooms_added,
                     "bases_recorded": applied.bases_recorded,
                     "rules_set": applied.rules_set,
                     "corridors_set": applied.corridors_set,
                     "devices_added": applied.devices_added,
                     "devices": {device: {"username": creds.username,
                                          "client_id": creds.client_id,
                                          "password": creds.password}
                                 for device, creds in applied.credentials.items()}}
                    for applied in done], as_json=True)
        return
    for applied in done:
        typer.echo(f"site {applied.site}: {'added' if applied.site_added else 'found'}, "
                   f"{len(applied.rooms_added)} room(s), "
                   f"{len(applied.bases_recorded)} basis record(s), "
                   f"{len(applied.rules_set)} site rule(s) and "
                   f"{len(applied.devices_added)} device(s) added or changed")
        for device, creds in applied.credentials.items():
            typer.echo(f"  {device}: username {creds.username} client id {creds.client_id} "
                       f"password {creds.password}")
    if any(applied.credentials for applied in done):
        typer.echo("the passwords are shown only this once; store them in the devices now, "
                   "each with its client id", err=True)


def _read(path: Path) -> str:
    from provisioning import ProvisioningError

    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProvisioningError(f"cannot read {path}: {exc.strerror}") from None


# -- rooms ---------------------------------------------------------------------------------

@room_app.command("add")
def room_add(
    site: SiteArgument,
    room: Annotated[str, typer.Argument(help="room id, e.g. f12")],
    kind: Annotated[RoomKind, typer.Option(help="flat, common or exit")],
    label: Annotated[str | None, typer.Option(help="shown on the board; never a name")] = None,
) -> None:
    """Add a room to a site."""
    from provisioning import add_room

    add_room(current_settings(), site, room, kind, label)
    record("room.add", site, room, {"kind": kind.value, "label": label})
    typer.echo(f"room {site}/{room} added")


@room_app.command("label")
def room_label(
    site: SiteArgument,
    room: Annotated[str, typer.Argument(help="room id, e.g. f12")],
    label: Annotated[str, typer.Argument(help="the new label; never a resident's name")],
) -> None:
    """Give a room a new label (its id, kind, devices and history stay)."""
    from provisioning import relabel_room

    before = relabel_room(current_settings(), site, room, label)
    record("room.relabel", site, room, {"before": before, "after": label.strip()})
    typer.echo(f"room {site}/{room} relabelled: {before} -> {label.strip()}")


@room_app.command("delete")
def room_delete(
    site: SiteArgument,
    room: Annotated[str, typer.Argument(help="room id, e.g. f12")],
) -> None:
    """Delete a room added by mistake (one that never held a device nor raised an alert)."""
    from ingest.sites import delete_room
    from provisioning import ProvisioningError

    with connect_store() as conn:
        removal = delete_room(conn, site, room)
    if removal == "missing":
        raise ProvisioningError(f"room {room!r} does not exist on site {site!r}; "
                                f"`nattero room list {site}` shows its rooms")
    if removal == "in_use":
        raise ProvisioningError(
            f"room {room!r} has held devices or raised alerts, so it stays; revoke its "
            f"devices, and erase its history when its resident moves out: "
            f"nattero erase room {site} {room}")
    record("room.delete", site, room)
    typer.echo(f"room {site}/{room} deleted")


@room_app.command("list")
def room_list(site: SiteArgument, as_json: JsonOption = False) -> None:
    """A site's rooms: kind, label, whether monitored today (a flat needs a valid basis) and
    how many devices they hold."""
    from collections import Counter

    from ingest.sites import active_devices, rooms_with_monitoring

    with connect_store() as conn:
        _require_site(conn, site)
        rooms = rooms_with_monitoring(conn, site)
        devices = Counter(device.room for device in active_devices(conn, site))
    print_rows([{"site": site, "room": r.id, "kind": r.kind, "label": r.label,
                 "monitored": r.monitored, "devices": devices[r.id]} for r in rooms], as_json)




@room_app.command("basis")
def room_basis(
    site: SiteArgument,
    room: Annotated[str, typer.Argument(help="flat id, e.g. f12")],
    consent: Annotated[bool, typer.Option("--consent", help="the resident consented")] = False,
    decision: Annotated[str | None, typer.Option(help="municipal decision reference")] = None,
    valid_from: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    valid_to: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
) -> None:
    """Record why a flat may be monitored; without a valid basis it raises no alerts."""
    from provisioning import record_basis

    record_basis(current_settings(), site, room, consent=consent, decision_ref=decision,
                 valid_from=date_option(valid_from, "--valid-from"),
                 valid_to=date_option(valid_to, "--valid-to"))
    record("room.basis", site, room, {"consent": consent, "decision": decision,
                                      "valid_from": valid_from, "valid_to": valid_to})
    typer.echo(f"basis recorded for {site}/{room}")


# -- devices -------------------------------------------------------------------------------

@device_app.command("add")
def device_add(
    site: SiteArgument,
    device: Annotated[str, typer.Argument(help="device id, e.g. f12-door")],
    room: Annotated[str, typer.Option(help="room the device sits in")],
    kind: Annotated[DeviceKind, typer.Option(
        help="door, bed, motion, exit or staff (a staff-room door or a staff tag reader)")],
    heartbeat: Annotated[int, typer.Option(help="heartbeat interval, seconds")] = 300,
    source: Annotated[DeviceSource, typer.Option(help="native, zigbee2mqtt or chirpstack")] =
        DeviceSource.NATIVE,
    external_id: Annotated[str | None, typer.Option(help="bridge name / DevEUI")] = None,
    mapping: Annotated[str | None, typer.Option(help="vendor mapping for chirpstack")] = None,
    setup_dir: SetupDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Provision a device; prints its MQTT username, client id and password once
    (``--setup-dir``: also its setup as a JSON file and a QR code)."""
    from provisioning import add_device

    if setup_dir is not None:
        _check_setup_free(setup_dir, site, [device])
    creds = add_device(current_settings(), site, device, room, kind, heartbeat, source=source,
                       external_id=external_id, mapping=mapping)
    record("device.add", site, device, {"room": room, "kind": kind.value,
                                        "source": source.value, "external_id": external_id})
    if source != DeviceSource.NATIVE:
        print_record({"site": site, "device": device, "source": source.value,
                      "external_id": external_id}, as_json)
        return
    print_record({"site": site, "device": device, "username": creds.username,
                  "client_id": creds.client_id, "password": creds.password}, as_json)
    if setup_dir is not None:
        _write_setup(setup_dir, site, device, creds)
    if not as_json:
        typer.echo(_SHOWN_ONCE, err=True)


@device_app.command("rotate")
def device_rotate(
    site: SiteArgument,
    devices: Annotated[list[str], typer.Argument(help="device ids", show_default=False)],
    setup_dir: SetupDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give devices whose password was lost a new one (the old one stops working)."""
    from provisioning import rotate_device_password

    settings = current_settings()
    if setup_dir is not None:
        _check_setup_free(setup_dir, site, devices)
    rows = []
    for device in devices:
        creds = rotate_device_password(settings, site, device)
        record("device.rotate", site, device)
        if setup_dir is not None:
            _write_setup(setup_dir, site, device, creds)
        rows.append({"site": site, "device": device, "username": creds.username,
                     "client_id": creds.client_id, "password": creds.password})
    print_rows(rows, as_json)
    if not as_json:
        typer.echo(_SHOWN_ONCE, err=True)


@device_app.command("revoke")
def device_revoke(site: SiteArgument,
                  device: Annotated[str, typer.Argument(help="device id")]) -> None:
    """Remove a device's access immediately (it is disconnected and refused)."""
    from provisioning import revoke_device

    revoke_device(current_settings(), site, device)
    record("device.revoke", site, device)
    typer.echo(f"device {site}/{device} revoked")


@device_app.command("move")
def device_move(
    site: SiteArgument,
    device: Annotated[str, typer.Argument(help="device id")],
    room: Annotated[str, typer.Option(help="the room of the same site it now sits in")],
) -> None:
    """Move a device to another room of its site (its events from now on count there;
    those stored before stay in the room they happened in)."""
    from ingest.sites import move_device
    from provisioning import ProvisioningError
    from provisioning.sites import check_room_kind

    with connect_store() as conn:
        _require_site(conn, site)
        move = move_device(conn, site, device, room)
    if move.outcome == "no_device":
        raise ProvisioningError(f"device {device!r} is not provisioned on site {site!r}; "
                                f"`nattero device list {site}` shows its devices")
    if move.outcome == "no_room":
        raise ProvisioningError(f"room {room!r} does not exist on site {site!r}; "
                                f"`nattero room list {site}` shows its rooms")
    if move.outcome == "same_room":
        raise ProvisioningError(f"device {device!r} already sits in room {room!r}")
    if move.outcome == "wrong_kind":
        assert move.device_kind is not None and move.room_kind is not None
        check_room_kind(move.device_kind, room, move.room_kind)  # raises, with the reason
    record("device.move", site, device, {"before": move.before, "after": room})
    typer.echo(f"device {site}/{device} moved: {move.before} -> {room}")


@device_app.command("list")
def device_list(
    site: Annotated[str | None, typer.Argument(
        help="only this site's devices (default: every site)", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Devices with their presence, battery and last event."""
    from ingest.listing import list_devices

    with connect_store() as conn:
        if site is not None:
            _require_site(conn, site)
        found = list_devices(conn, site)
    print_rows([{"site": d.site, "device": d.id, "room": d.room, "kind": d.kind,
                 "source": d.source, "presence": d.presence, "battery": d.battery,
                 "last_event_at": d.last_event_at, "revoked": d.revoked_at is not None}
                for d in found], as_json)


# -- bridges -------------------------------------------------------------------------------

@bridge_app.command("add")
def bridge_add(
    name: Annotated[str, typer.Argument(help="short id, e.g. zigbee-solsikken")],
    source: Annotated[DeviceSource, typer.Option(help="zigbee2mqtt or chirpstack")],
    application_id: Annotated[str | None, typer.Option(
        help="chirpstack: publish only under application/ID/#")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a bridge's broker account; prints its MQTT username, client id and password
    once."""
    from provisioning.bridges import add_bridge

    creds = add_bridge(current_settings(), name, source, application_id=application_id)
    record("bridge.add", None, name, {"source": source.value})
    print_record({"bridge": name, "source": source.value, "username": creds.username,
                  "client_id": creds.client_id, "password": creds.password}, as_json)
    if not as_json:
        typer.echo("the password is shown only this once; put it in the bridge's "
                   "configuration now, with this client id (any other is refused)", err=True)


@bridge_app.command("revoke")
def bridge_revoke(name: Annotated[str, typer.Argument(help="bridge id")]) -> None:
    """Delete a bridge's broker account (it is disconnected and refused; devices stay)."""
    from provisioning.bridges import revoke_bridge

    revoke_bridge(current_settings(), name)
    record("bridge.revoke", None, name)
    typer.echo(f"bridge {name} revoked")


# -- broker --------------------------------------------------------------------------------

@broker_app.command("hub-add")
def broker_hub_add(site: SiteArgument, as_json: JsonOption = False) -> None:
    """Create a site hub's account on every central broker (docs/brokers.md); prints its
    username, client id and password once, for the hub's bridge configuration."""
    from provisioning.bridges import add_site_hub

    creds = add_site_hub(current_settings(), site)
    record("broker.hub_add", site, creds.username)
    print_record({"site": site, "username": creds.username, "client_id": creds.client_id,
                  "password": creds.password}, as_json)
    if not as_json:
        typer.echo("the password is shown only this once; put it in each of the hub's bridge "
                   "connections (remote_password) with this client id (remote_clientid)",
                   err=True)


@broker_app.command("hub-revoke")
def broker_hub_revoke(site: SiteArgument) -> None:
    """Delete a site hub's account on every central broker (its bridges are refused)."""
    from provisioning.bridges import revoke_site_hub

    revoke_site_hub(current_settings(), site)
    record("broker.hub_revoke", site, None)
    typer.echo(f"the hub account of site {site} is revoked")


@broker_app.command("bind-client-ids")
def broker_bind_client_ids(as_json: JsonOption = False) -> None:
    """Bind older device and bridge accounts to their own client id (once, idempotent).

    Reconfigure each device and bridge to connect with its username as client id first:
    from then on the broker refuses any other id."""
    from provisioning.client_ids import bind_existing_accounts

    bound = bind_existing_accounts(current_settings())
    record("broker.bind_client_ids", None, None, {"bound": bound})
    if as_json:
        print_record({"bound": bound}, as_json)
    else:
        typer.echo(f"{len(bound)} account(s) bound to their client id"
                   + (f": {', '.join(bound)}" if bound else "; all were bound already"))
