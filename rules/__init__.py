"""Nattero's rules: per-room and per-device state evaluated in event time.

Events in (``core.events``), alert intents out; no database, no MQTT, no wall clock.
The runtime that stores events and applies intents to the alerts table lives elsewhere.
"""

from core.intents import Clear, Escalate, Intent, Trigger
from core.night_window import DEFAULT_NIGHT, DEFAULT_TIME_ZONE, NightWindow
from rules.engine import RulesEngine
from rules.errors import IllegalTransition, LayoutError, RulesError, UnknownSite
from rules.layout import BasisKind, DeviceInfo, MonitoringBasis, RoomInfo, SiteLayout
from rules.settings import RuleBook, RuleName, RuleOverride, RuleSetting, Severity

__all__ = [
    "DEFAULT_NIGHT",
    "DEFAULT_TIME_ZONE",
    "BasisKind",
    "Clear",
    "DeviceInfo",
    "Escalate",
    "IllegalTransition",
    "Intent",
    "LayoutError",
    "MonitoringBasis",
    "NightWindow",
    "RoomInfo",
    "RuleBook",
    "RuleName",
    "RuleOverride",
    "RuleSetting",
    "RulesEngine",
    "RulesError",
    "Severity",
    "SiteLayout",
    "Trigger",
    "UnknownSite",
]
