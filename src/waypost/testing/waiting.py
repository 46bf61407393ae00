"""Waiting for a condition on a real agent, bounded in time: the one polling loop tests share."""

from __future__ import annotations

import asyncio
import time
import urllib.error
from collections.abc import Callable
from typing import Any

__all__ = ["until", "wait_for"]


def wait_for(predicate: Callable[[], Any], limit: float = 15.0, step: float = 0.1) -> float:
    """Seconds until ``predicate()`` held; AssertionError after ``limit``. An agent that is
    still starting or momentarily unreachable (OSError, ValueError) counts as "not yet"."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            if predicate():
                return time.monotonic() - start
        except (OSError, ValueError, urllib.error.URLError):
            pass
        time.sleep(step)
    raise AssertionError(f"condition not met within {limit}s")


async def until(predicate: Callable[[], Any], limit: float = 5.0, step: float = 0.02) -> None:
    """``wait_for`` for a condition on objects living in the running event loop (a duty, a
    proxy): it sleeps on the loop, so the work it waits for goes on meanwhile."""
    for _ in range(max(1, round(limit / step))):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {limit}s")
