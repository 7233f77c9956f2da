"""The alert vocabulary of the public contract: rules, severities, states, changes, outcomes."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "DEVICE_RULES",
    "STAFF_OUTCOMES",
    "AlertChange",
    "AlertStatus",
    "Outcome",
    "RuleName",
    "Severity",
]


class RuleName(StrEnum):
    LEFT_FLAT = "left_flat"
    BED_EXIT_NOT_BACK = "bed_exit_not_back"
    COMMON_MOTION = "common_motion"
    BUILDING_EXIT = "building_exit"
    SENSOR_OFFLINE = "sensor_offline"
    LOW_BATTERY = "low_battery"


# Rules about the equipment, not a resident: counted apart in scores and reports, never
# "needless" (a dead sensor is a real problem), and never a night call for a resident.
DEVICE_RULES = frozenset({RuleName.SENSOR_OFFLINE, RuleName.LOW_BATTERY})


class Severity(StrEnum):
    NOTICE = "notice"
    NORMAL = "normal"
    HIGH = "high"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertChange(StrEnum):
    """What happened to an alert, as announced on the board's stream."""

    RAISED = "raised"
    MERGED = "merged"
    ESCALATED = "escalated"
    REANNOUNCED = "reannounced"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLEARED = "cleared"
    # A step of the escalation to people: the call sent on to the second person or the
    # coordinator (or the sending failed); the step is in the alert's ``passed_on``.
    PASSED_ON = "passed_on"


class Outcome(StrEnum):
    HELP_GIVEN = "help_given"
    NO_ACTION_NEEDED = "no_action_needed"
    FALSE_ALARM = "false_alarm"
    CLEARED = "cleared_automatically"


# What a person records when resolving an alert; ``CLEARED`` is Nattero's own (the situation
# ended by itself), never chosen on the board.
STAFF_OUTCOMES = (Outcome.HELP_GIVEN, Outcome.NO_ACTION_NEEDED, Outcome.FALSE_ALARM)
# A call with one of these outcomes needed nobody: the report's needless calls.
NEEDLESS_OUTCOMES = (Outcome.FALSE_ALARM, Outcome.NO_ACTION_NEEDED, Outcome.CLEARED)
