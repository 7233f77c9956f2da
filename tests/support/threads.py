"""Fail the test when a background thread (a paho loop, a writer) died of an exception."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def fail_on_thread_exception() -> Iterator[None]:
    failures: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook

    def record(args: threading.ExceptHookArgs) -> None:
        failures.append(args)
        previous(args)

    threading.excepthook = record
    try:
        yield
    finally:
        threading.excepthook = previous
    if failures:
        first = failures[0]
        thread = first.thread.name if first.thread else "?"
        pytest.fail(f"{len(failures)} background thread(s) raised; first in {thread}: "
                    f"{first.exc_type.__name__}: {first.exc_value}", pytrace=False)
