"""Errors the rules engine raises, each saying what was wrong and what to do.

    RulesError
    ├── LayoutError        a site layout, night window or rule book that cannot be evaluated
    │                      (also a ValueError)
    ├── UnknownSite        a call names a site the engine was never given (also a LookupError)
    └── IllegalTransition  a state machine was asked for a transition its state forbids: a bug
                           in the engine, never a consequence of odd sensor input
"""

from __future__ import annotations

from core.errors import ConfigurationError, NatteroError

__all__ = ["IllegalTransition", "LayoutError", "RulesError", "UnknownSite"]


class RulesError(NatteroError):
    """Base of every error raised by ``rules``."""


class LayoutError(RulesError, ConfigurationError):
    """A layout, night window or rule book is inconsistent or malformed."""


class UnknownSite(RulesError, LookupError):
    """The engine has no layout for this site."""


class IllegalTransition(RulesError):
    """A named transition was requested from a state that does not allow it."""
