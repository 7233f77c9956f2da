"""The base of every error Nattero raises on purpose.

Each package has its own small hierarchy below ``NatteroError`` (``ProvisioningError``,
``RulesError``, ``EvaluationError``, ``SimulatorError``, ``StackError``, ...). The CLI turns
a ``NatteroError`` into one clear line for the user and exit code 1; anything else is a bug
and keeps its traceback.

    NatteroError
    ├── ConfigurationError   a setting, night window or time zone that cannot be used
    │   │                    (also a ValueError)
    │   └── NotConfigured    no database or broker account given and no local stack found
    │                        (also a RuntimeError)
    └── Unavailable          the database or the broker cannot be reached right now
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "NatteroError", "NotConfigured", "Unavailable"]


class NatteroError(Exception):
    """An error whose message tells the user what was wrong and what to do next."""


class ConfigurationError(NatteroError, ValueError):
    """A setting, night window or time zone that cannot be used as given."""


class NotConfigured(ConfigurationError, RuntimeError):
    """No database URL or broker account was given and ``nattero up`` has not run."""


class Unavailable(NatteroError):
    """The database or the broker refused the connection or did not answer."""
