"""The base of every error Nattero raises on purpose.

Each package has its own small hierarchy below ``NatteroError`` (``ProvisioningError``,
``RulesError``, ``EvaluationError``, ...). The CLI turns a ``NatteroError`` into one clear
line for the user; anything else is a bug and keeps its traceback.

    NatteroError
    └── ConfigurationError   a setting, night window or time zone that cannot be used
                             (also a ValueError)
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "NatteroError"]


class NatteroError(Exception):
    """An error whose message tells the user what was wrong and what to do next."""


class ConfigurationError(NatteroError, ValueError):
    """A setting, night window or time zone that cannot be used as given."""
