"""Night staff answering the calls of a simulation: taken, walked to, resolved with what
they found (``nattero simulate --respond``).

The ground truth knows what staff would find, so the outcome follows from it: a call that
caught a needed-help episode is *help given*; a call about something that happened but
needed nobody (an outing that ran long, a resident up and about) is *no action needed*;
a call nothing in the truth explains (a flapping contact, staff in a common room) is a
*false alarm*. The times come from the profile's ``staff.response`` ranges, the same for
the same seed. Every call is answered: these staff never forget to resolve one, which a
real night's figures will not match; the report then measures response times and
needless calls from outcomes, as it would at a site. Device alerts are not calls to a
flat and quiet situations called nobody: neither is answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.alerts import DEVICE_RULES, Outcome
from simulators.ground_truth import AlertRecord, GroundTruth, answers, relates
from simulators.profile import SiteProfile
from simulators.seeding import stream

__all__ = ["CallAnswer", "plan_answers"]


@dataclass(frozen=True, slots=True)
class CallAnswer:
    alert_id: int
    site: str
    taken_at: datetime
    resolved_at: datetime
    outcome: Outcome


def plan_answers(profile: SiteProfile, truth: GroundTruth, alerts: Sequence[AlertRecord],
                 seed: int) -> list[CallAnswer]:
    """How staff answered each stored call of ``profile``'s site in ``alerts``."""
    site = profile.site
    episodes = [e for e in truth.episodes if e.site == site]
    needed = [e for e in episodes if e.needed_help]
    response = profile.staff.response
    planned: list[CallAnswer] = []
    for alert in alerts:
        if (alert.site != site or alert.id is None or alert.called_at is None
                or alert.rule in DEVICE_RULES):
            continue
        rng = stream(seed, site, "answer", alert.id)
        take = response.take_s_high if alert.severity == "high" else response.take_s_normal
        taken = alert.called_at + timedelta(seconds=rng.uniform(*take))
        there = taken + timedelta(seconds=rng.uniform(*response.walk_s))
        if any(answers(alert, e) for e in needed):
            outcome, minutes = Outcome.HELP_GIVEN, response.help_minutes
        elif any(relates(alert, e) for e in episodes):
            outcome, minutes = Outcome.NO_ACTION_NEEDED, response.check_minutes
        else:
            outcome, minutes = Outcome.FALSE_ALARM, response.check_minutes
        resolved = there + timedelta(minutes=rng.uniform(*minutes))
        planned.append(CallAnswer(alert.id, site, taken.replace(microsecond=0),
                                  resolved.replace(microsecond=0), outcome))
    return planned
