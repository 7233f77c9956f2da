"""Simulated pilot sites: realistic nights of residents and devices, published over MQTT.

Simulators are devices: they speak only MQTT protocol v1, each with its own credentials,
and provision their sites as an admin would, through the ``nattero`` command line. Of the
project they import only ``core``.
The ground truth of what happened is kept apart, to score a rule set's alerts.
"""

from simulators.behaviour import plan_day, plan_night
from simulators.command import SimulationResult, print_summary, run_simulation
from simulators.ground_truth import AlertRecord, Episode, GroundTruth, Score, score
from simulators.profile import SiteProfile, all_profiles, load_profile

__all__ = [
    "AlertRecord",
    "Episode",
    "GroundTruth",
    "Score",
    "SimulationResult",
    "SiteProfile",
    "all_profiles",
    "load_profile",
    "plan_day",
    "plan_night",
    "print_summary",
    "run_simulation",
    "score",
]
