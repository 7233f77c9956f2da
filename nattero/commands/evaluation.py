"""``nattero export`` and ``nattero report``: the evaluators' verbs.

Both read the store directly (no API) and write an audit row with actor ``cli``. The
choices of ``--format``, ``--level`` and ``--bucket`` are spelled out here as literals
(``evaluation``'s enums hold the same values) so that ``--help`` need not import the
evaluation, which loads matplotlib and pyarrow.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from nattero.commands.config import connect_store, current_settings
from nattero.commands.output import date_option

__all__ = ["BucketName", "FormatName", "LanguageName", "LevelName", "export", "report"]

FormatName = Literal["csv", "csv-da", "parquet", "xlsx"]
LevelName = Literal["site", "room"]
BucketName = Literal["15m", "1h", "1d"]
#: ``core.i18n.Language``: the report and the handover are Danish unless asked otherwise.
LanguageName = Literal["da", "en"]
#: ``evaluation.occupancy.DEFAULT_K``: buckets with fewer rooms are suppressed.
DEFAULT_K = 5


def export(
    site: Annotated[list[str], typer.Option("--site", help="site id (repeat for several)")],
    from_: Annotated[str, typer.Option("--from", help="first local day, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last local day, inclusive")],
    out: Annotated[Path, typer.Option(help="file to write ('-' for stdout)")],
    level: Annotated[LevelName, typer.Option(help="site (aggregate) or room (pseudonymised)")] =
        "site",
    bucket: Annotated[BucketName, typer.Option(help="15m, 1h or 1d")] = "15m",
    format: Annotated[FormatName, typer.Option(help="csv, csv-da, parquet or xlsx")] = "csv",
    k: Annotated[int, typer.Option(min=1, help="suppress buckets with fewer rooms")] =
        DEFAULT_K,
    reason: Annotated[str | None, typer.Option(
        help="why room-level data is needed (required with --level room and --alerts; "
             "audited)")] = None,
    alerts: Annotated[bool, typer.Option(
        "--alerts", help="one anonymous row per alert (hour, room pseudonym, rule, outcome, "
                         "minutes to acknowledge/resolve) instead of occupancy; whole months, "
                         "--reason; --level and --bucket do not apply")] = False,
) -> None:
    """Anonymous occupancy export (CSV as ZIP with manifest, Parquet, XLSX); audited.

    Only nights that have ended; --level room and --alerts only for whole calendar months
    and with --reason."""
    from evaluation.exports import export_bytes, prepare_export
    from evaluation.formats import ExportFormat
    from evaluation.occupancy import Bucket, Level, OccupancyRequest
    from evaluation.period import Period
    from ingest.audit import audit
    from ingest.installation import signing_secret

    first, last = date_option(from_, "--from"), date_option(to, "--to")
    assert first is not None and last is not None
    if alerts:
        _export_alerts(tuple(dict.fromkeys(site)), Period(first, last), out,
                       ExportFormat(format), k, reason)
        return
    request = OccupancyRequest(tuple(dict.fromkeys(site)), Period(first, last), Level(level),
                               Bucket(bucket), k, reason)
    with connect_store() as conn:
        prepared = prepare_export(conn, request, ExportFormat(format))
        with conn.transaction():
            audit(conn, "cli", "export.occupancy",
                  site[0] if len(site) == 1 else None, None, prepared.audit_detail())
        secret = signing_secret(conn, current_settings().secret_key)
        chunks = export_bytes(conn, prepared, secret)
        if str(out) == "-":
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        else:
            with out.open("wb") as sink:
                for chunk in chunks:
                    sink.write(chunk)
            typer.echo(f"{out}: {prepared.manifest.rows} rows, "
                       f"{prepared.manifest.suppressed_rows} suppressed", err=True)


def _export_alerts(sites: tuple[str, ...], period: Any, out: Path, fmt: Any, k: int,
                   reason: str | None) -> None:
    from evaluation.alert_export import AlertRequest, alert_export_bytes, prepare_alert_export
    from ingest.audit import audit
    from ingest.installation import signing_secret

    with connect_store() as conn:
        prepared = prepare_alert_export(conn, AlertRequest(sites, period, k, reason), fmt)
        with conn.transaction():
            audit(conn, "cli", "export.alerts", sites[0] if len(sites) == 1 else None, None,
                  prepared.audit_detail())
        secret = signing_secret(conn, current_settings().secret_key)
        chunks = alert_export_bytes(conn, prepared, secret)
        if str(out) == "-":
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return
        with out.open("wb") as sink:
            for chunk in chunks:
                sink.write(chunk)
        typer.echo(f"{out}: {prepared.manifest.rows} alerts, "
                   f"{prepared.manifest.suppressed_alerts} left out (k={k})", err=True)


def report(
    site: Annotated[str, typer.Option("--site", help="site id")],
    out: Annotated[Path, typer.Option(help="report.html (a .pdf beside it with --pdf)")],
    from_: Annotated[str | None, typer.Option("--from", help="first night, YYYY-MM-DD")] =
        None,
    to: Annotated[str | None, typer.Option("--to", help="last night, inclusive")] = None,
    handover: Annotated[bool, typer.Option(
        "--handover", help="the morning handover of the site's last night instead")] = False,
    night: Annotated[str | None, typer.Option(help="with --handover: this night")] = None,
    compare: Annotated[list[str] | None, typer.Option(
        "--compare", help="another pilot to rank against (repeat)")] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="also write the PDF")] = True,
    rounds_per_night: Annotated[float, typer.Option(help="assumed routine rounds")] = 3.0,
    minutes_per_check: Annotated[float, typer.Option(help="assumed minutes per check")] = 2.0,
    handling_minutes: Annotated[float | None, typer.Option(
        help="minutes per alert visit (default: measured)")] = None,
    wake_share: Annotated[float, typer.Option(
        help="assumed share of checks that wake a sleeping resident")] = 0.3,
    lang: Annotated[LanguageName, typer.Option(
        "--lang", help="language of the report or handover: da (Danish) or en")] = "da",
    economics: Annotated[Path | None, typer.Option(
        help="economics settings (costs per site, wage rate, go/no-go criteria): a copy of "
             "evaluation/economics.toml; default: NATTERO_ECONOMICS_FILE or the packaged "
             "assumptions")] = None,
) -> None:
    """Benefit-evaluation report (HTML + PDF), or the morning handover with --handover."""
    from evaluation.economics import load_settings
    from evaluation.errors import PeriodError
    from evaluation.handover import build_handover, render_handover
    from evaluation.period import Period
    from evaluation.report import build_report, render_html, render_pdf
    from evaluation.staff_time import Assumptions
    from ingest.audit import audit

    if handover:
        the_night = date_option(night, "--night")
        with connect_store() as conn:
            page = build_handover(conn, site, the_night)
            out.write_text(render_handover(page, lang), encoding="utf-8")
            audit(conn, "cli", "report.handover", site, page.night.isoformat(), {})
        typer.echo(f"handover of night {page.night} written to {out}")
        return
    first, last = date_option(from_, "--from"), date_option(to, "--to")
    if first is None or last is None:
        raise PeriodError("a benefit report needs --from and --to (or use --handover)")
    assumptions = Assumptions(rounds_per_night, minutes_per_check, handling_minutes, wake_share)
    with connect_store() as conn:
        made = build_report(conn, site, Period(first, last), assumptions, compare,
                            load_settings(economics or current_settings().economics_file))
        out.write_text(render_html(made, lang), encoding="utf-8")
        written = [str(out)]
        if pdf:
            pdf_path = out.with_suffix(".pdf")
            pdf_path.write_bytes(render_pdf(made, lang))
            written.append(str(pdf_path))
        audit(conn, "cli", "report.benefit", site, None,
              {"from": first.isoformat(), "to": last.isoformat(),
               "compare": list(compare or []), "assumptions": assumptions.as_dict()})
    typer.echo(f"report written to {', '.join(written)}")
