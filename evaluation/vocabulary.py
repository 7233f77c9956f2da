"""The names a person reads for rules, outcomes and sensors, as catalogue messages.

Kept beside the board's names (``dashboard/js/i18n.js``) so the report and the handover
say what the board says. ``mark`` only marks a message for the catalogue; the page's
``Localizer`` translates it when it is shown.
"""

from __future__ import annotations

from core.i18n import Localizer, mark

RULES = {
    "left_flat": mark("Left the flat"),
    "bed_exit_not_back": mark("Out of bed, not back"),
    "common_motion": mark("Movement in common area"),
    "building_exit": mark("Building exit opened"),
    "sensor_offline": mark("Sensor offline"),
    "low_battery": mark("Low battery"),
}

OUTCOMES = {
    "help_given": mark("Help given"),
    "no_action_needed": mark("No action needed"),
    "false_alarm": mark("False alarm"),
    "cleared_automatically": mark("Cleared by itself"),
    "unresolved": mark("Not handled"),
    "open": mark("Not handled"),
    "acknowledged": mark("Acknowledged, not resolved"),
}

SENSORS = {"door": mark("Door"), "bed": mark("Bed"), "motion": mark("Motion"),
           "exit": mark("Exit door"), "staff": mark("Staff presence"),
           "?": mark("Unknown sensor")}

PROBLEMS = {"offline": mark("offline"), "silent": mark("sent nothing all night")}

BASIS = {"measured": mark("measured"), "assumed": mark("assumed"),
         "estimate": mark("estimate (rests on assumptions)")}


# The end-of-shift questionnaire (ingest.experience.QUESTIONS), as the board asks it.
QUESTIONS = {
    "calm": mark("The night felt calm"),
    "workload": mark("The workload was manageable"),
    "trust": mark("I trusted the alerts"),
    "residents_rest": mark("The residents got their night rest"),
}


def name(t: Localizer, names: dict[str, str], key: str) -> str:
    """The translated name of ``key``; an unknown key is shown as it is, never dropped."""
    return t.gettext(names[key]) if key in names else key.replace("_", " ")
