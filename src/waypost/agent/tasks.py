"""Stopping the agent's background tasks, the one way every component does it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["cancel_all"]


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel every task, wait until each has finished, and empty the list."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()
