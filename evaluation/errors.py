"""Errors of exports and reports; each message says what to change.

    EvaluationError (a NatteroError, also a ValueError)
     ├── UnknownSite       a site that does not exist
     ├── PeriodError       from/to missing, reversed or too long
     │    ├── NightNotEnded    the period reaches a night that has not ended yet
     │    └── NotWholeMonths   a room-level export not of whole calendar months
     ├── ReasonRequired    a room-level export without a reason for the audit log
     └── ExportTooLarge    more rows than the chosen format can hold (XLSX)

Refusals an evaluator meets in the browser say it in Danish first, then in English.
"""

from __future__ import annotations

from core.errors import NatteroError


class EvaluationError(NatteroError, ValueError):
    """An export or report that cannot be made as asked."""


class UnknownSite(EvaluationError):
    pass


class PeriodError(EvaluationError):
    pass


class NightNotEnded(PeriodError):
    pass


class NotWholeMonths(PeriodError):
    pass


class ReasonRequired(EvaluationError):
    pass


class ExportTooLarge(EvaluationError):
    pass
