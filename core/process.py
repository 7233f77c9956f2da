"""Tuning of a whole Nattero process, applied only by the process that owns it."""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects"]


def freeze_startup_objects() -> None:
    """Exclude what start-up built (modules, the app, the rebuilt rules engine) from future
    garbage collections: a full collection then walks only newer objects, so it cannot
    stall the process - and an alert on its way - for as long."""
    gc.collect()
    gc.freeze()
