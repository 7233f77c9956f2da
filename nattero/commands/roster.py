"""``nattero roster set|show|contact|policy``: who takes a site's unacknowledged calls at
night (on duty, second person, on-call coordinator: accounts, never residents), how to
mail them, and a site's own minutes before a call goes on to them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import typer

from nattero.commands.audit import record
from nattero.commands.config import connect_store
from nattero.commands.output import JsonOption, print_record, verb_group

__all__ = ["roster_app"]

roster_app = verb_group("The escalation's people: roster per night, e-mail, minutes.")

SiteArg = Annotated[str, typer.Argument(help="site id")]


def _night(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; give the evening the night "
                                 f"starts on, e.g. 2026-12-06", param_hint="--night") from None


def _existing_site(conn: object, site: str) -> None:
    import psycopg

    from core.errors import NatteroError
    from ingest.sites import site_exists

    assert isinstance(conn, psycopg.Connection)
    if not site_exists(conn, site):
        raise NatteroError(f"site '{site}' does not exist; list sites with: nattero site list")


@roster_app.command("set")
def roster_set(
    site: SiteArg,
    night: Annotated[str | None, typer.Option(
        help="the evening the night starts on (YYYY-MM-DD; default today)")] = None,
    duty: Annotated[str | None, typer.Option(help="account on duty")] = None,
    second: Annotated[str | None, typer.Option(
        help="account of the second person (gets an unacknowledged call first)")] = None,
    coordinator: Annotated[str | None, typer.Option(
        help="account of the on-call coordinator (gets it after the second person)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set (replace) the site's roster for a night."""
    from ingest import roster

    when = _night(night)
    with connect_store() as conn:
        _existing_site(conn, site)
        with conn.transaction():
            found = roster.set_roster(conn, site, when, duty=duty, second=second,
                                      coordinator=coordinator, set_by="cli")
    record("roster.set", site, when.isoformat(),
           {"duty": duty, "second": second, "coordinator": coordinator})
    print_record({"site": found.site, "night": found.night.isoformat(), "duty": found.duty,
                  "second": found.second, "coordinator": found.coordinator}, as_json)


@roster_app.command("show")
def roster_show(
    site: SiteArg,
    night: Annotated[str | None, typer.Option(
        help="the evening the night starts on (YYYY-MM-DD; default today)")] = None,
    as_json: JsonOption = False,
) -> None:
    """The site's roster for a night."""
    from core.errors import NatteroError
    from ingest import roster

    when = _night(night)
    with connect_store() as conn:
        found = roster.roster_of(conn, site, when)
    if found is None:
        raise NatteroError(f"site '{site}' has no roster for the night of {when}; set it "
                           f"with: nattero roster set {site} --night {when} --second USER")
    print_record({"site": found.site, "night": found.night.isoformat(), "duty": found.duty,
                  "second": found.second, "coordinator": found.coordinator}, as_json)


@roster_app.command("contact")
def roster_contact(
    username: Annotated[str, typer.Argument(help="the account's login name")],
    email: Annotated[str | None, typer.Option(
        help="where the escalation's e-mails go (or an SMS gateway's address); "
        "omit to remove it")] = None,
) -> None:
    """Set an account's e-mail address for the escalation."""
    from core.errors import NatteroError
    from ingest import roster

    if email is not None and ("@" not in email or any(c.isspace() for c in email)):
        raise NatteroError(f"{email!r} is not an e-mail address; give one like "
                           f"nattevagt@plejehjem.dk")
    with connect_store() as conn:
        roster.set_contact(conn, username, email)
    record("user.contact", None, username)
    typer.echo(f"{username}: e-mail {email or 'removed'}")


@roster_app.command("policy")
def roster_policy(
    site: SiteArg,
    severity: Annotated[Literal["normal", "high"], typer.Option(help="normal or high")],
    second_after: Annotated[float, typer.Option(
        help="minutes unacknowledged before the call goes to the second person")],
    coordinator_after: Annotated[float, typer.Option(
        help="minutes unacknowledged before it goes to the coordinator")],
) -> None:
    """The site's own minutes before a call goes on to each person (the settings'
    NATTERO_ESCALATION_*_MINUTES otherwise)."""
    from core.errors import NatteroError
    from ingest import roster

    if not 0 < second_after < coordinator_after <= 720:
        raise NatteroError("give 0 < --second-after < --coordinator-after <= 720 minutes: the "
                           "coordinator comes after the second person")
    with connect_store() as conn:
        _existing_site(conn, site)
        roster.set_policy(conn, site, severity, roster.Policy(second_after, coordinator_after))
    record("site.escalation", site, severity,
           {"second_after_minutes": second_after, "coordinator_after_minutes":
            coordinator_after})
    typer.echo(f"{site} ({severity}): second person after {second_after:g} min, coordinator "
               f"after {coordinator_after:g} min")
