"""The test session's environment, and the fixture modules of ``tests.support`` as plugins.

The stack is started once per session under ``<repo>/.nattero-test`` on its own ports and
left running at the end, so the next run reuses it (`nattero down` with the same
environment stops it). Set NATTERO_STATE_DIR / _PG_PORT / _MQTT_PORT to override.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Before anything reads settings: tests never touch a developer's own `.nattero` stack.
# Absolute, so subprocesses started in another directory find the same stack.
os.environ["NATTERO_STATE_DIR"] = str(
    Path(os.environ.get("NATTERO_STATE_DIR", REPO / ".nattero-test")).expanduser().resolve())
os.environ.setdefault("NATTERO_PG_PORT", "55433")
os.environ.setdefault("NATTERO_MQTT_PORT", "51884")
# Test data lives in past years (DST nights, 1985 retention cases): never drop it by age.
os.environ.setdefault("NATTERO_RETENTION_DAYS", "36500")
# The session's stack is never backed up: no WAL archive growing without end
# (tests/test_backup.py turns it on for a stack of its own).
os.environ.setdefault("NATTERO_WAL_ARCHIVE", "off")
# The "no board connected" watch (api/push.py) of every API server a test starts would, in
# a real night (22-07 in Copenhagen), record a silence for every test site without a board
# and show its banner on boards that test something else. No site is named "-": the tests
# of the watch name their own sites (tests/test_push.py, tests/test_escalation.py).
os.environ.setdefault("NATTERO_BOARD_WATCH_SITES", '["-"]')
for _kept in ("ROLLUP", "ALERT", "AUDIT"):
    os.environ.setdefault(f"NATTERO_{_kept}_RETENTION_DAYS", "36500")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from core.settings import get_settings  # noqa: E402

get_settings.cache_clear()

# Imported after the environment above is set: these modules read settings.
pytest_plugins = [
    "tests.support.threads",
    "tests.support.store",
    "tests.support.pipeline",
    "tests.support.api",
    "tests.support.board",
    "tests.support.evaluation",
]

# Fixtures that need a service; a test marked `pure` (run by `make test-fast`) must use none.
SERVICE_FIXTURES = frozenset({"stack", "browser", "api_process", "broker"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("pure") is None:
            continue
        used = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used:
            raise pytest.UsageError(f"{item.nodeid} is marked pure but uses {sorted(used)}; "
                                    f"drop the mark or the fixture")
