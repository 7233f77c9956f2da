"""Reading occupancy exports back in tests: the API call, the file formats, the manifest."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date
from typing import Any

import httpx
import pyarrow.parquet as pq
from openpyxl import load_workbook

from evaluation.period import Period

#: Room-level exports need a reason (audited); the tests give this one unless told otherwise.
REASON = "benefit evaluation: nights at rest per flat"


def read_export(response: httpx.Response, fmt: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows (as strings or native values) and the manifest of an export response."""
    assert response.status_code == 200, response.text
    content = response.content
    if fmt in ("csv", "csv-da"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            text = archive.read("occupancy.csv").decode("utf-8-sig")
            manifest = json.loads(archive.read("manifest.json"))
        rows = list(csv.DictReader(io.StringIO(text), delimiter=";" if fmt == "csv-da" else ","))
        return rows, manifest
    if fmt == "parquet":
        parquet = pq.ParquetFile(io.BytesIO(content))
        manifest = json.loads(parquet.metadata.metadata[b"nattero.manifest"])
        return parquet.read().to_pylist(), manifest
    book = load_workbook(io.BytesIO(content), read_only=True)
    sheet = list(book["occupancy"].iter_rows(values_only=True))
    header = ["bucket", *sheet[0][1:]]
    manifest_rows = {row[0]: row[1] if len(row) > 1 else None
                     for row in book["manifest"].iter_rows(values_only=True)}
    return [dict(zip(header, row, strict=True)) for row in sheet[1:]], manifest_rows


def number(value: Any) -> float:
    if value in (None, ""):
        return 0.0
    return float(str(value).replace(",", "."))


def export(http: httpx.Client, headers: dict[str, str], sites: list[str], first: date,
           last: date, **params: Any) -> httpx.Response:
    """The export's response; a room-level one gives ``REASON`` unless ``reason`` is passed
    (``reason=None``: none at all)."""
    if params.get("level") == "room":
        params.setdefault("reason", REASON)
    query = {"site": sites, "from": first.isoformat(), "to": last.isoformat(),
             **{name: value for name, value in params.items() if value is not None}}
    return http.get("/api/v1/exports/occupancy", headers=headers, params=query)


def whole_month(day: date) -> tuple[date, date]:
    """The calendar month of ``day``, first and last day (room level exports whole months)."""
    period = Period(day, day).whole_months()
    return period.first, period.last
