"""Alert quality of a simulation, in the figures that cannot be gamed by waiting.

Per site and in total: recall of the needed-help episodes, needless resident alerts per
site-night, alerts per needed-help episode (one situation should be one alert, not three),
and the detection delay — the first answering alert's call time minus the episode's need
onset — per kind of need (median, p90, max). A rule set that waits longer raises fewer
needless alerts but pays for it here, in delay.

Alerts are matched to episodes by ``ground_truth.answers`` and timed by
``ground_truth.call_time`` only, so switching what "the alert's time" means is one edit.
It never changes ``ground_truth.score``; it reads the same truth and alerts.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from core.alerts import DEVICE_RULES
from simulators.ground_truth import (
    AlertRecord,
    Episode,
    GroundTruth,
    NeedKind,
    answers,
    call_time,
    relates,
)

__all__ = ["DelayStats", "NeedQuality", "Quality", "SiteQuality", "delay_stats", "quality"]


@dataclass(frozen=True, slots=True)
class DelayStats:
    """Detection delays of the caught episodes of one kind of need, in seconds."""

    caught: int
    missed: int
    median_s: float | None
    p90_s: float | None
    max_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {"caught": self.caught, "missed": self.missed, "median_s": self.median_s,
                "p90_s": self.p90_s, "max_s": self.max_s}


def delay_stats(delays: Sequence[timedelta], missed: int = 0) -> DelayStats:
    """Median, p90 (nearest rank: the smallest delay at least 90 % are within) and max."""
    if not delays:
        return DelayStats(caught=0, missed=missed, median_s=None, p90_s=None, max_s=None)
    seconds = sorted(delay.total_seconds() for delay in delays)
    p90 = seconds[math.ceil(0.9 * len(seconds)) - 1]
    return DelayStats(caught=len(seconds), missed=missed,
                      median_s=round(statistics.median(seconds), 1),
                      p90_s=round(p90, 1), max_s=round(seconds[-1], 1))


@dataclass(frozen=True, slots=True)
class NeedQuality:
    """One needed-help episode and what answered it."""

    episode: Episode
    alerts: int                      # distinct resident alerts that answered it
    delay: timedelta | None          # None: missed (no alert answered it)


@dataclass(frozen=True, slots=True)
class SiteQuality:
    site: str
    nights: int
    needs: tuple[NeedQuality, ...]
    needless: int                    # resident alerts that answered no needed-help episode

    @property
    def needed(self) -> int:
        return len(self.needs)

    @property
    def caught(self) -> int:
        return sum(1 for need in self.needs if need.delay is not None)

    @property
    def recall(self) -> float | None:
        return self.caught / self.needed if self.needed else None

    @property
    def needless_per_site_night(self) -> float | None:
        return self.needless / self.nights if self.nights else None

    @property
    def alerts_per_needed(self) -> float | None:
        """Mean alerts answering one caught episode: 1.0 is one alert per situation."""
        caught = [need.alerts for need in self.needs if need.delay is not None]
        return sum(caught) / len(caught) if caught else None


@dataclass(frozen=True, slots=True)
class Quality:
    sites: dict[str, SiteQuality] = field(default_factory=dict)

    @property
    def needs(self) -> list[NeedQuality]:
        return [need for site in self.sites.values() for need in site.needs]

    @property
    def site_nights(self) -> int:
        return sum(site.nights for site in self.sites.values())

    @property
    def recall(self) -> float | None:
        needs = self.needs
        return sum(n.delay is not None for n in needs) / len(needs) if needs else None

    @property
    def needless_per_site_night(self) -> float | None:
        needless = sum(site.needless for site in self.sites.values())
        return needless / self.site_nights if self.site_nights else None

    @property
    def alerts_per_needed(self) -> float | None:
        caught = [need.alerts for need in self.needs if need.delay is not None]
        return sum(caught) / len(caught) if caught else None

    def delays(self, site: str | None = None) -> dict[NeedKind, DelayStats]:
        """Per kind of need (every kind listed, even with no episode tonight)."""
        needs = self.sites[site].needs if site is not None else self.needs
        return {kind: delay_stats(
            [n.delay for n in needs if n.episode.need is kind and n.delay is not None],
            missed=sum(1 for n in needs if n.episode.need is kind and n.delay is None))
            for kind in NeedKind}

    def site_json(self, site: str) -> dict[str, Any]:
        scored = self.sites[site]
        return {"recall": scored.recall, "needless_per_site_night": _round(
                    scored.needless_per_site_night),
                "alerts_per_needed": _round(scored.alerts_per_needed),
                "delay_s": {str(k): v.to_json() for k, v in self.delays(site).items()}}

    def total_json(self) -> dict[str, Any]:
        return {"recall": self.recall,
                "needless_per_site_night": _round(self.needless_per_site_night),
                "alerts_per_needed": _round(self.alerts_per_needed),
                "delay_s": {str(k): v.to_json() for k, v in self.delays().items()}}


def quality(truth: GroundTruth, alerts: Sequence[AlertRecord]) -> Quality:
    """Score ``alerts`` against ``truth`` per site (sites of the truth and of the alerts)."""
    needed: dict[str, list[Episode]] = defaultdict(list)
    for episode in truth.needing_help():
        needed[episode.site].append(episode)
    by_site: dict[str, list[AlertRecord]] = defaultdict(list)
    for alert in alerts:
        if alert.rule not in DEVICE_RULES:
            by_site[alert.site].append(alert)
    sites: dict[str, SiteQuality] = {}
    for site in sorted(set(truth.nights) | set(needed) | set(by_site)):
        resident_alerts = by_site.get(site, [])
        answered: set[int] = set()
        needs: list[NeedQuality] = []
        calls = [alert for alert in resident_alerts if call_time(alert) is not None]
        for episode in needed.get(site, []):
            hits = [i for i, alert in enumerate(calls) if answers(alert, episode)]
            answered.update(i for i, alert in enumerate(calls) if relates(alert, episode))
            needs.append(NeedQuality(episode=episode, alerts=len(hits),
                                     delay=_delay(episode, [calls[i] for i in hits])))
        # Needless: calls about no needed-help episode (quiet situations called nobody).
        sites[site] = SiteQuality(
            site=site, nights=len(truth.nights.get(site, [])), needs=tuple(needs),
            needless=len(calls) - len(answered))
    return Quality(sites=sites)


def _delay(episode: Episode, hits: Sequence[AlertRecord]) -> timedelta | None:
    """First call minus need onset; an alert already calling when the need began counts 0."""
    if not hits:
        return None
    onset = episode.need_onset or episode.start
    first_call = min(call for call in map(call_time, hits) if call is not None)
    return max(timedelta(0), first_call - onset)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
