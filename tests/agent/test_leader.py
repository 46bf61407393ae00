from __future__ import annotations

from waypost.agent.leader import TombstoneTimer
from waypost.config.model import Duration, TombstoneGC


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_deletes_become_reapable_a_ttl_later_batched_by_granularity() -> None:
    clock = Clock()
    timer = TombstoneTimer(TombstoneGC(ttl=Duration("60s"), granularity=Duration("10s")), clock)
    assert timer.next_expiry() is None
    timer.hint(5)
    clock.now += 3
    timer.hint(9)
    clock.now += 3
    timer.hint(12)
    assert timer.next_expiry() == 1060.0
    clock.now = 1059.9
    assert timer.expired() == 0
    clock.now = 1060.0
    assert timer.expired() == 5
    assert timer.next_expiry() == 1070.0
    clock.now = 1070.0
    assert timer.expired() == 12
    assert timer.next_expiry() is None
    assert timer.expired() == 0


def test_one_reap_covers_every_bin_that_came_due() -> None:
    clock = Clock()
    timer = TombstoneTimer(TombstoneGC(ttl=Duration("1s"), granularity=Duration("1s")), clock)
    timer.hint(3)
    clock.now += 5
    timer.hint(7)
    clock.now += 5
    timer.hint(8)
    assert timer.expired() == 7
    assert timer.next_expiry() == 1011.0
