"""A rejected message heard from two central brokers is one dead letter (unit level; the
real brokers: ``tests/test_brokers.py``)."""

from __future__ import annotations

from gateway.copies import BrokerCopies


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_other_brokers_copy_is_a_copy_but_a_repeat_through_one_broker_is_not() -> None:
    clock = Clock()
    copies = BrokerCopies(window_s=60, clock=clock)
    assert not copies.is_copy(0, "nattero/v1/s/d/events", b"bad")
    assert copies.is_copy(1, "nattero/v1/s/d/events", b"bad")
    assert copies.is_copy(2, "nattero/v1/s/d/events", b"bad")  # a third broker too
    # The device sends it again: a message of its own, through either broker.
    assert not copies.is_copy(0, "nattero/v1/s/d/events", b"bad")
    assert copies.is_copy(1, "nattero/v1/s/d/events", b"bad")
    # Another payload or topic is another message.
    assert not copies.is_copy(1, "nattero/v1/s/d/events", b"worse")
    assert not copies.is_copy(1, "nattero/v1/s/e/events", b"bad")


def test_a_copy_is_only_a_copy_within_the_window_and_old_entries_are_let_go() -> None:
    clock = Clock()
    copies = BrokerCopies(window_s=60, clock=clock)
    for n in range(1000):
        copies.is_copy(0, "t", str(n).encode())
    clock.now = 59
    assert copies.is_copy(1, "t", b"999")
    clock.now = 61
    assert not copies.is_copy(1, "t", b"998")  # too late: the same message sent again
    assert len(copies) == 1  # only the new one: the rest were let go
