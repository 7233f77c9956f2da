"""Rule back-testing: a site's stored nights replayed with proposed rule settings, in a
sandbox, and compared with the current settings and the outcomes staff recorded.

Reads the store (``ingest.backtest``), runs the rules engine (``rules``) in memory, writes
nothing and announces nothing.
"""

from backtest.comparison import MAX_NIGHTS, Backtest, HelpFinding, NeedlessFinding, run_backtest
from backtest.errors import BacktestError, PeriodTooLong, ProposalError
from backtest.proposal import RuleChange, changes_from_file, changes_from_sets

__all__ = [
    "MAX_NIGHTS",
    "Backtest",
    "BacktestError",
    "HelpFinding",
    "NeedlessFinding",
    "PeriodTooLong",
    "ProposalError",
    "RuleChange",
    "changes_from_file",
    "changes_from_sets",
    "run_backtest",
]
