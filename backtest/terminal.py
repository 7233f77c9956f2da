"""The back-test on a terminal (``nattero backtest``): tables in the chosen language, a
risky proposal in red. Danish first."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from backtest.comparison import Backtest
from core.i18n import Localizer

__all__ = ["print_backtest"]


def _delta(before: int, after: int) -> str:
    diff = after - before
    return f"[green]{diff:+d}[/green]" if diff < 0 else (f"[red]{diff:+d}[/red]" if diff
                                                         else "0")


def print_backtest(test: Backtest, t: Localizer, console: Console) -> None:
    data = test.to_json()
    console.print(t.gettext(
        "Back-test of {site}, nights {first} to {last}: {events} events replayed in "
        "{seconds} s", site=test.site, first=t.date(test.first_night, "short"),
        last=t.date(test.last_night, "short"), events=t.number(test.events),
        seconds=t.number(test.seconds, 2)))
    for change in test.changes:
        where = change.room or t.gettext("the whole site")
        values = ", ".join(f"{k}={v}" for k, v in change.to_json().items()
                           if k not in ("rule", "room") and v is not None)
        console.print(f"  {change.rule} ({where}): {values}")
    totals = Table(title=t.gettext("Alerts per night"))
    for heading in (t.gettext("Night"), t.gettext("Now"), t.gettext("Proposed"),
                    t.gettext("Change")):
        totals.add_column(heading)
    for row in data["per_night"]:
        totals.add_row(row["night"], str(row["current"]), str(row["proposed"]),
                       _delta(row["current"], row["proposed"]))
    console.print(totals)
    for title, key in ((t.gettext("By rule"), "by_rule"), (t.gettext("By room"), "by_room")):
        table = Table(title=title)
        for heading in (t.gettext("Name"), t.gettext("Now per night"),
                        t.gettext("Proposed per night"), t.gettext("Change")):
            table.add_column(heading)
        rows = [r for r in data[key] if key == "by_rule" or r["current"] != r["proposed"]]
        for row in rows:
            table.add_row(row["name"], t.number(row["current_per_night"], 2),
                          t.number(row["proposed_per_night"], 2),
                          _delta(row["current"], row["proposed"]))
        if rows:
            console.print(table)
    helped = [f for f in test.help_given if f.verdict in ("missed", "delayed")]
    for finding in helped:
        local = finding.first_ts.astimezone(test.night.tz)
        if finding.verdict == "missed":
            text = t.gettext("MISSED: alert {alert} ({rule}, room {room}, {moment}) led to "
                             "help and would not have called", alert=finding.alert_id,
                             rule=finding.rule, room=finding.room,
                             moment=t.moment(local, test.night.tz))
        else:
            text = t.gettext("DELAYED: alert {alert} ({rule}, room {room}, {moment}) led to "
                             "help and would have called {minutes} min later",
                             alert=finding.alert_id, rule=finding.rule, room=finding.room,
                             moment=t.moment(local, test.night.tz),
                             minutes=t.number((finding.delay_s or 0) / 60, 1))
        console.print(f"[bold red]{text}[/bold red]")
    console.print(t.gettext("Alerts that led to help: {helped}; missed or delayed: {risky}",
                            helped=len(test.help_given), risky=len(helped)))
    console.print(t.gettext("Needless alerts that would go: {gone}; that would go quiet: "
                            "{quiet}", gone=sum(f.verdict == "gone" for f in test.needless),
                            quiet=sum(f.verdict == "quiet" for f in test.needless)))
    if test.risky:
        console.print("[bold red]" + t.gettext(
            "RISKY: this change would have missed or delayed help. Applying it needs an "
            "explicit confirmation.") + "[/bold red]")
