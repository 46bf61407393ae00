"""What the long-running tool commands (registrator, proxy, template) share."""

from __future__ import annotations

import asyncio
import signal

__all__ = ["cancel_on_termination"]


def cancel_on_termination() -> None:
    """SIGINT and SIGTERM cancel the calling task, so that its ``finally`` blocks run
    (deregistering, closing listeners) instead of the process dying mid-write."""
    task = asyncio.current_task()
    assert task is not None, "call from inside the command's task"
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
