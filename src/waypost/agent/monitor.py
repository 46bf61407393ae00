"""Live log streaming for ``/v1/agent/monitor`` (``waypost monitor``).

A logging handler fans each record out to the subscribed streams. A slow reader's queue
is bounded and drops lines rather than slowing the agent, as Consul's monitor does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

__all__ = ["LEVELS", "LogBroadcaster"]

LEVELS = {"trace": 5, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "err": logging.ERROR, "error": logging.ERROR}  # fmt: skip

_QUEUE = 512
_FORMAT = logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s")


class LogBroadcaster(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=1)
        self._subscribers: set[tuple[int, bool, asyncio.Queue[str]]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if not self._subscribers:
            return
        for level, as_json, queue in list(self._subscribers):
            if record.levelno < level:
                continue
            if as_json:
                line = json.dumps(
                    {"@timestamp": record.created, "@level": record.levelname.lower(),
                     "@module": record.name, "@message": record.getMessage()}
                )  # fmt: skip
            else:
                line = _FORMAT.format(record)
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(line + "\n")

    async def stream(self, level: int, as_json: bool) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[str] = asyncio.Queue(_QUEUE)
        entry = (level, as_json, queue)
        self._subscribers.add(entry)
        root = logging.getLogger()
        saved = root.level
        if root.level > level:
            root.setLevel(level)
        try:
            yield b""
            while True:
                yield (await queue.get()).encode()
        finally:
            self._subscribers.discard(entry)
            if not self._subscribers:
                root.setLevel(saved)
