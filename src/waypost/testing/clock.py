"""A clock that moves only when a test moves it, for the code that takes its clock injected."""

from __future__ import annotations

__all__ = ["ManualClock"]


class ManualClock:
    """``clock()`` answers ``now``; a test sets or advances ``now`` to make time pass."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
