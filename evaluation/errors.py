"""Errors of exports and reports; each message says what to change.

    EvaluationError (a NatteroError, also a ValueError)
     ├── UnknownSite       a site that does not exist
     ├── PeriodError       from/to missing, reversed or too long
     └── ExportTooLarge    more rows than the chosen format can hold (XLSX)
"""

from __future__ import annotations

from core.errors import NatteroError


class EvaluationError(NatteroError, ValueError):
    """An export or report that cannot be made as asked."""


class UnknownSite(EvaluationError):
    pass


class PeriodError(EvaluationError):
    pass


class ExportTooLarge(EvaluationError):
    pass
