"""``nattero export`` and ``nattero report``, registered in ``nattero.cli``.

Both read the store directly (no API) and write an audit row with actor ``cli``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from core.settings import get_settings
from evaluation.formats import ExportFormat
from evaluation.occupancy import DEFAULT_K, Bucket, Level


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} {value!r} is not a date like 2026-11-23")
    raise AssertionError


def _connect() -> psycopg.Connection:
    return psycopg.connect(get_settings().resolved_database_url(), autocommit=True)


def _guarded(run: Callable[[], None]) -> None:
    from evaluation.errors import EvaluationError

    try:
        run()
    except typer.Exit:
        raise
    except EvaluationError as exc:
        _fail(str(exc))
    except psycopg.OperationalError as exc:
        _fail(f"the database is not reachable ({str(exc).strip().splitlines()[0]}); "
              "start the local stack with `nattero up` or check NATTERO_DATABASE_URL")
    except RuntimeError as exc:  # settings: no stack configured
        _fail(str(exc))


def export(
    site: Annotated[list[str], typer.Option("--site", help="site id (repeat for several)")],
    from_: Annotated[str, typer.Option("--from", help="first local day, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="last local day, inclusive")],
    out: Annotated[Path, typer.Option(help="file to write ('-' for stdout)")],
    level: Annotated[Level, typer.Option(help="site (aggregate) or room (pseudonymised)")] =
        Level.SITE,
    bucket: Annotated[Bucket, typer.Option(help="15m, 1h or 1d")] = Bucket.QUARTER,
    format: Annotated[ExportFormat, typer.Option(help="csv, csv-da, parquet or xlsx")] =
        ExportFormat.CSV,
    k: Annotated[int, typer.Option(min=1, help="suppress buckets with fewer rooms")] =
        DEFAULT_K,
) -> None:
    """Anonymous occupancy export (CSV as ZIP with manifest, Parquet, XLSX); audited."""
    from evaluation.exports import export_bytes, prepare_export
    from evaluation.occupancy import OccupancyRequest
    from evaluation.period import Period
    from ingest.audit import audit

    first, last = _day(from_, "--from"), _day(to, "--to")
    assert first is not None and last is not None

    def run() -> None:
        request = OccupancyRequest(tuple(dict.fromkeys(site)), Period(first, last), level,
                                   bucket, k)
        with _connect() as conn:
            prepared = prepare_export(conn, request, format)
            with conn.transaction():
                audit(conn, "cli", "export.occupancy",
                      site[0] if len(site) == 1 else None, None, prepared.audit_detail())
            chunks = export_bytes(conn, prepared, get_settings().secret_key)
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

    _guarded(run)


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
) -> None:
    """Benefit-evaluation report (HTML + PDF), or the morning handover with --handover."""
    from evaluation.handover import build_handover, render_handover
    from evaluation.period import Period
    from evaluation.report import build_report, render_html, render_pdf
    from evaluation.staff_time import Assumptions
    from ingest.audit import audit

    def run() -> None:
        with _connect() as conn:
            if handover:
                page = build_handover(conn, site, _day(night, "--night"))
                out.write_text(render_handover(page), encoding="utf-8")
                audit(conn, "cli", "report.handover", site, page.night.isoformat(), {})
                typer.echo(f"handover of night {page.night} written to {out}")
                return
            first, last = _day(from_, "--from"), _day(to, "--to")
            if first is None or last is None:
                _fail("a benefit report needs --from and --to (or use --handover)")
            assert first is not None and last is not None
            assumptions = Assumptions(rounds_per_night, minutes_per_check, handling_minutes,
                                      wake_share)
            made = build_report(conn, site, Period(first, last), assumptions, compare)
            out.write_text(render_html(made), encoding="utf-8")
            written = [str(out)]
            if pdf:
                pdf_path = out.with_suffix(".pdf")
                pdf_path.write_bytes(render_pdf(made))
                written.append(str(pdf_path))
            audit(conn, "cli", "report.benefit", site, None,
                  {"from": first.isoformat(), "to": last.isoformat(),
                   "compare": list(compare or []), "assumptions": assumptions.as_dict()})
            typer.echo(f"report written to {', '.join(written)}")

    _guarded(run)
