"""Evaluation of the pilots: anonymous occupancy exports and benefit-evaluation reports.

Reads the store (events, alerts, rooms) through the query functions of ``ingest.occupancy``,
``ingest.evaluation`` and ``ingest.sites``, and holds no SQL itself: it computes and renders.
Writes nothing but the caller's audit row.
Never lets a room id, room label, device id or an event's own timestamp into an export.
"""

from evaluation.benefit import SiteFigures, compare, site_figures
from evaluation.errors import (
    EvaluationError,
    ExportTooLarge,
    NightNotEnded,
    NotWholeMonths,
    PeriodError,
    ReasonRequired,
    UnknownSite,
)
from evaluation.exports import PreparedExport, export_bytes, prepare_export
from evaluation.formats import ExportFormat
from evaluation.handover import Handover, build_handover, render_handover
from evaluation.occupancy import DEFAULT_K, Bucket, Level, OccupancyRequest
from evaluation.period import Period
from evaluation.report import PDF_PAGES, BenefitReport, build_report, render_html, render_pdf
from evaluation.staff_time import Assumptions

__all__ = [
    "DEFAULT_K", "PDF_PAGES", "Assumptions", "BenefitReport", "Bucket", "EvaluationError",
    "ExportFormat", "ExportTooLarge", "Handover", "Level", "NightNotEnded", "NotWholeMonths",
    "OccupancyRequest", "Period", "PeriodError", "PreparedExport", "ReasonRequired",
    "SiteFigures", "UnknownSite", "build_handover",
    "build_report", "compare", "export_bytes", "prepare_export", "render_handover",
    "render_html", "render_pdf", "site_figures",
]
