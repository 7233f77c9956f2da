"""Which rules run where: defaults, per-site and per-room overrides.

A room's setting for a rule is resolved field by field: the room's override beats the
site's override, which beats the default. What ``minutes`` means depends on the rule:

================  =========  ==========  ==============================================
rule              severity   minutes     meaning of minutes
================  =========  ==========  ==============================================
left_flat         normal     15          escalate if not back within this many minutes
bed_exit_not_back normal     10          alert if not back in bed within this many
common_motion     normal     10          motion gaps shorter than this merge
building_exit     high       0           out of the building: an outing becomes a call
                                         after this many minutes; 0 = at once (the
                                         default: a safety limit a site loosens on
                                         purpose, e.g. a shelter whose residents go out
                                         to smoke); None = the flat's left_flat minutes
sensor_offline    normal     None        silence allowed; None means 2x the device's
                                         heartbeat interval. Quiet (the pre-shift check
                                         and the board's maintenance list), a call to
                                         night staff only at severity high
low_battery       notice     (unused)    below 15 % raises, 20 % or more re-arms; quiet
================  =========  ==========  ==============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from core.alerts import RuleName, Severity
from rules.errors import LayoutError

__all__ = [
    "DEFAULT_SETTINGS",
    "LOW_BATTERY_BELOW",
    "LOW_BATTERY_REARM_AT",
    "RuleBook",
    "RuleName",
    "RuleOverride",
    "RuleSetting",
    "Severity",
]

LOW_BATTERY_BELOW = 15
LOW_BATTERY_REARM_AT = 20


@dataclass(frozen=True, slots=True)
class RuleSetting:
    """How one rule behaves in one room."""

    enabled: bool = True
    minutes: int | None = None
    severity: Severity = Severity.NORMAL


@dataclass(frozen=True, slots=True)
class RuleOverride:
    """A partial setting: None fields are inherited from the level below."""

    enabled: bool | None = None
    minutes: int | None = None
    severity: Severity | None = None

    def over(self, base: RuleSetting) -> RuleSetting:
        return RuleSetting(
            enabled=base.enabled if self.enabled is None else self.enabled,
            minutes=base.minutes if self.minutes is None else self.minutes,
            severity=base.severity if self.severity is None else Severity(self.severity),
        )


DEFAULT_SETTINGS: Mapping[RuleName, RuleSetting] = MappingProxyType(
    {
        RuleName.LEFT_FLAT: RuleSetting(minutes=15),
        RuleName.BED_EXIT_NOT_BACK: RuleSetting(minutes=10),
        RuleName.COMMON_MOTION: RuleSetting(minutes=10),
        RuleName.BUILDING_EXIT: RuleSetting(minutes=0, severity=Severity.HIGH),
        RuleName.SENSOR_OFFLINE: RuleSetting(),
        RuleName.LOW_BATTERY: RuleSetting(severity=Severity.NOTICE),
    }
)


def _checked(overrides: Mapping[RuleName, RuleOverride] | Mapping[str, RuleOverride],
             where: str) -> Mapping[RuleName, RuleOverride]:
    checked: dict[RuleName, RuleOverride] = {}
    for name, override in overrides.items():
        try:
            rule = RuleName(name)
        except ValueError:
            known = ", ".join(r.value for r in RuleName)
            raise LayoutError(f"unknown rule {name!r} in {where}; known rules: {known}") from None
        # 0 means "at once", which only a building exit can mean (exits always call).
        lowest = 0 if rule is RuleName.BUILDING_EXIT else 1
        if override.minutes is not None and override.minutes < lowest:
            raise LayoutError(
                f"rule {rule} in {where} has minutes={override.minutes}; give a number of "
                f"at least {lowest}"
            )
        checked[rule] = override
    return MappingProxyType(checked)


@dataclass(frozen=True, slots=True)
class RuleBook:
    """Per-site and per-room overrides over ``DEFAULT_SETTINGS``.

    ``site`` maps rule -> override for every room of the site; ``rooms`` maps room id ->
    (rule -> override). Keys may be given as plain strings; unknown rules are refused.
    """

    site: Mapping[RuleName, RuleOverride] = field(default_factory=dict)
    rooms: Mapping[str, Mapping[RuleName, RuleOverride]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "site", _checked(self.site, "the site rules"))
        object.__setattr__(
            self,
            "rooms",
            MappingProxyType(
                {room: _checked(rules, f"room {room!r}") for room, rules in self.rooms.items()}
            ),
        )

    def setting(self, rule: RuleName, room: str) -> RuleSetting:
        """The effective setting of ``rule`` in ``room`` (room beats site beats default)."""
        setting = DEFAULT_SETTINGS[rule]
        site_override = self.site.get(rule)
        if site_override is not None:
            setting = site_override.over(setting)
        room_override = self.rooms.get(room, {}).get(rule)
        if room_override is not None:
            setting = room_override.over(setting)
        return setting
