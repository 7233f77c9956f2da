"""A proposed change of a site's rules: settings per site or room, over what is stored.

A change replaces the stored setting of the same rule and room as a whole (fields left out
are inherited from the level below), exactly as applying it through the admin API would
(``ingest.rule_settings.upsert_rule_setting``).

Given on the command line as ``--set RULE.FIELD=VALUE`` (``--room ROOM`` for one room), or
as a file of settings (``--rules FILE``, JSON or TOML)::

    [[setting]]
    rule = "left_flat"
    room = "f07"          # leave out for the whole site
    minutes = 25
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backtest.errors import ProposalError
from core.alerts import RuleName, Severity
from ingest.rule_layouts import StoredRuleSetting

__all__ = ["RuleChange", "apply_changes", "changes_from_file", "changes_from_sets"]

_FIELDS = ("enabled", "minutes", "severity")


@dataclass(frozen=True, slots=True)
class RuleChange:
    """One rule's setting for the whole site (``room`` None) or one room."""

    rule: RuleName
    room: str | None = None
    enabled: bool | None = None
    minutes: int | None = None
    severity: Severity | None = None

    def __post_init__(self) -> None:
        if self.enabled is None and self.minutes is None and self.severity is None:
            raise ProposalError("a change of rule {rule} sets nothing; give at least one of "
                                "enabled, minutes, severity", rule=self.rule)
        lowest = 0 if self.rule is RuleName.BUILDING_EXIT else 1
        if self.minutes is not None and not lowest <= self.minutes <= 720:
            raise ProposalError("rule {rule} cannot have {minutes} minutes; give {lowest} to "
                                "720", rule=self.rule, minutes=self.minutes, lowest=lowest)

    def to_json(self) -> dict[str, Any]:
        return {key: (str(value) if isinstance(value, RuleName | Severity) else value)
                for key, value in asdict(self).items()}


def _rule(name: str) -> RuleName:
    try:
        return RuleName(name)
    except ValueError:
        raise ProposalError("unknown rule '{rule}'; the rules are {known}", rule=name,
                            known=", ".join(r.value for r in RuleName)) from None


def _value(rule: RuleName, key: str, raw: object) -> object:
    try:
        if key == "enabled":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "yes", "on", "1", "ja"):
                return True
            if text in ("false", "no", "off", "0", "nej"):
                return False
            raise ValueError(text)
        if key == "minutes":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(str(raw))
        if key == "severity":
            return Severity(str(raw))
    except ValueError:
        raise ProposalError("'{value}' is not a value for {rule}.{field}", value=raw,
                            rule=rule, field=key) from None
    raise ProposalError("a rule has no field '{field}'; set enabled, minutes or severity",
                        field=key)


def _change(raw: Mapping[str, object]) -> RuleChange:
    name = raw.get("rule")
    if not isinstance(name, str):
        raise ProposalError("every setting needs its rule, e.g. rule = \"left_flat\"")
    rule = _rule(name)
    room = raw.get("room")
    values = {key: _value(rule, key, value) for key, value in raw.items()
              if key not in ("rule", "room") and value is not None}
    return RuleChange(rule, None if room is None else str(room), **values)  # type: ignore[arg-type]


def changes_from_sets(sets: Iterable[str], room: str | None = None) -> list[RuleChange]:
    """``RULE.FIELD=VALUE`` items (``left_flat.minutes=25``), for ``room`` or the site."""
    fields: dict[RuleName, dict[str, object]] = {}
    for item in sets:
        target, sep, value = item.partition("=")
        rule_name, dot, key = target.strip().partition(".")
        if not sep or not dot:
            raise ProposalError("'{item}' is not RULE.FIELD=VALUE, e.g. left_flat.minutes=25",
                                item=item)
        rule = _rule(rule_name)
        fields.setdefault(rule, {})[key.strip()] = _value(rule, key.strip(), value.strip())
    return [RuleChange(rule, room, **values)  # type: ignore[arg-type]
            for rule, values in fields.items()]


def changes_from_file(path: Path) -> list[RuleChange]:
    """Settings from a JSON list (or ``{"setting": [...]}``) or a TOML ``[[setting]]`` file."""
    try:
        text = path.read_text(encoding="utf-8")
        document: Any = (tomllib.loads(text) if path.suffix.lower() == ".toml"
                         else json.loads(text))
    except (OSError, ValueError) as exc:
        raise ProposalError("cannot read the rules file {path}: {problem}", path=str(path),
                            problem=str(exc)) from None
    items = document.get("setting", []) if isinstance(document, dict) else document
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items) or not items:
        raise ProposalError("the rules file {path} holds no settings; give a list of settings "
                            "with rule, room and enabled, minutes or severity", path=str(path))
    return [_change(item) for item in items]


def apply_changes(stored: Sequence[StoredRuleSetting], site: str,
                  changes: Sequence[RuleChange]) -> tuple[StoredRuleSetting, ...]:
    """The stored settings as they would be with ``changes`` applied to ``site``."""
    settings = {(s.site, s.room, s.rule): s for s in stored}
    for change in changes:
        settings[(site, change.room, change.rule)] = StoredRuleSetting(
            site, change.room, change.rule, change.enabled, change.minutes, change.severity)
    return tuple(settings.values())
