"""Deterministic random streams: one ``random.Random`` per purpose, derived from the run seed.

Every stochastic choice draws from a stream named by (seed, site, night, purpose), so a
site's night is the same whatever other sites or nights are simulated with it, and nothing
ever reads the global ``random`` state or the wall clock.
"""

from __future__ import annotations

import math
import random


def stream(seed: int, *parts: object) -> random.Random:
    """A fresh generator for one purpose. String seeds hash stably across processes."""
    return random.Random(":".join(str(part) for part in (seed, *parts)))


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth); the means here are small, a few per night at most."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
