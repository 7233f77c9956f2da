"""Errors of a rule back-test; each message says what to change.

    BacktestError (a NatteroError, also a ValueError)
     ├── ProposalError   a proposed setting that cannot be read or used
     └── PeriodTooLong   more nights than one back-test replays

As in ``evaluation.errors``: the message is a catalogue template with values, translated by
the API (Danish first); ``str(exc)`` is the English text the CLI prints.
"""

from __future__ import annotations

from core.errors import NatteroError

__all__ = ["BacktestError", "PeriodTooLong", "ProposalError"]


class BacktestError(NatteroError, ValueError):
    """A back-test that cannot be run as asked."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message.format(**values) if values else message)
        self.message = message
        self.values = values


class ProposalError(BacktestError):
    pass


class PeriodTooLong(BacktestError):
    pass
