"""Errors of exports and reports; each message says what to change.

    EvaluationError (a NatteroError, also a ValueError)
     ├── UnknownSite       a site that does not exist
     ├── PeriodError       from/to missing, reversed or too long
     │    ├── NightNotEnded    the period reaches a night that has not ended yet
     │    └── NotWholeMonths   a room-level export not of whole calendar months
     ├── ReasonRequired    a room-level export without a reason for the audit log
     └── ExportTooLarge    more rows than the chosen format can hold (XLSX)

Refusals an evaluator meets in the browser say it in Danish first, then in English: a
message given as a template with values (``PeriodError("the period has {days} days",
days=n)``) is translated by the API from the catalogue (``core.i18n``); ``str(exc)`` is
the English text the CLI prints.
"""

from __future__ import annotations

from core.errors import NatteroError


class EvaluationError(NatteroError, ValueError):
    """An export or report that cannot be made as asked."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message.format(**values) if values else message)
        self.message = message  # the catalogue message (a template when values are given)
        self.values = values


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
