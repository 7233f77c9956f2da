"""Writers of the occupancy export, as generators of bytes (nothing is held whole in memory).

- ``csv`` / ``csv-da``: a ZIP with ``occupancy.csv`` and ``manifest.json``. ``csv`` is plain
  UTF-8 with ``,``; ``csv-da`` is for Danish Excel: UTF-8 with BOM, ``;`` and decimal comma.
- ``parquet``: one file, written in row groups; the manifest is in the footer's key-value
  metadata under ``nattero.manifest``.
- ``xlsx``: sheet ``occupancy`` (openpyxl write-only mode) and sheet ``manifest``.

The manifest knows the row counts only at the end, which is why it travels beside the rows.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Manifest(Protocol):
    """What travels beside an export's rows (``occupancy.Manifest``, ``AlertManifest``)."""

    rows: int

    def as_dict(self) -> dict[str, Any]: ...


ROW_GROUP = 50_000
CHUNK = 1 << 16
XLSX_MAX_ROWS = 1_048_575


class ExportFormat(StrEnum):
    CSV = "csv"
    CSV_DA = "csv-da"
    PARQUET = "parquet"
    XLSX = "xlsx"

    @property
    def media_type(self) -> str:
        return {"csv": "application/zip", "csv-da": "application/zip",
                "parquet": "application/vnd.apache.parquet",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                }[self.value]

    @property
    def suffix(self) -> str:
        return {"csv": "csv.zip", "csv-da": "csv.zip", "parquet": "parquet",
                "xlsx": "xlsx"}[self.value]


class _Sink:
    """A write-only file that hands its bytes out as they are written (no seek)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def write_export(fmt: ExportFormat, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]],
                 manifest: Manifest, name: str = "occupancy") -> Iterator[bytes]:
    """``name``: the CSV file's and the XLSX sheet's name."""
    if fmt is ExportFormat.PARQUET:
        return _parquet(columns, rows, manifest)
    if fmt is ExportFormat.XLSX:
        return _xlsx(columns, rows, manifest, name)
    return _csv_zip(columns, rows, manifest, danish=fmt is ExportFormat.CSV_DA, name=name)


def _csv_cell(value: Any, danish: bool) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and danish:
        return f"{value:.1f}".replace(".", ",")
    return value


def _csv_zip(columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]], manifest: Manifest,
             danish: bool, name: str) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(f"{name}.csv", "w", force_zip64=True) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig" if danish else "utf-8",
                                    newline="")
            writer = csv.writer(text, delimiter=";" if danish else ",")
            writer.writerow(columns)
            for n, row in enumerate(rows, 1):
                writer.writerow([_csv_cell(value, danish) for value in row])
                if n % 2000 == 0:
                    text.flush()
                    yield sink.take()
            text.flush()
            text.detach()
        yield sink.take()
        archive.writestr("manifest.json", json.dumps(manifest.as_dict(), indent=2))
    yield sink.take()


def _parquet(columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]],
             manifest: Manifest) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([_arrow_field(name) for name in columns])
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    batch: list[tuple[Any, ...]] = []

    def flush() -> None:
        table = pa.Table.from_arrays(
            [pa.array([row[i] for row in batch], type=schema.field(i).type)
             for i in range(len(columns))], schema=schema)
        writer.write_table(table)
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= ROW_GROUP:
            flush()
            yield sink.take()
    if batch or manifest.rows == 0:
        flush()
    writer.add_key_value_metadata({"nattero.manifest": json.dumps(manifest.as_dict())})
    writer.close()
    yield sink.take()


def _arrow_field(name: str) -> Any:
    import pyarrow as pa

    if name in ("bucket", "hour"):
        return pa.field(name, pa.timestamp("s", tz="UTC"))
    if name in ("site", "room", "room_kind", "rule", "outcome"):
        return pa.field(name, pa.string())
    if name in ("at_rest", "suppressed"):
        return pa.field(name, pa.bool_())
    if name == "minutes_out_of_flat":
        return pa.field(name, pa.float64())
    return pa.field(name, pa.int64())


def _xlsx(columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]],
          manifest: Manifest, name: str) -> Iterator[bytes]:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(name)
    # Excel has no time zones: the bucket (hour) is the site's local wall-clock time.
    sheet.append([f"{columns[0]} (local time)", *columns[1:]])
    for n, row in enumerate(rows, 1):
        if n > XLSX_MAX_ROWS:
            raise RuntimeError("XLSX row limit passed; the row estimate should have refused")
        sheet.append([row[0].replace(tzinfo=None), *row[1:]])
    about = book.create_sheet("manifest")
    for key, value in _flatten(manifest.as_dict()):
        about.append([key, value])
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        book.save(spool)
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, f"{name}.")
        elif isinstance(value, list):
            yield name, ", ".join(str(v) for v in value)
        else:
            yield name, value
