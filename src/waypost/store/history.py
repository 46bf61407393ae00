"""Recent revisions' events, and the watchers that read them.

Watchers keep no queue of their own: each holds a cursor (the next revision it wants)
into one shared, bounded log. A writer only appends and wakes; it never waits for a
watcher. A watcher that falls so far behind that its cursor is trimmed away gets
``CompactedError``, exactly as an etcd watcher does after compaction, and re-lists.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from waypost.store.base import CompactedError, Event, StoreError

__all__ = ["DEFAULT_HISTORY", "History"]

DEFAULT_HISTORY = 100_000
"""Events kept for watchers that start in the past or fall behind."""


class History:
    def __init__(self, revision: int, first_available: int, limit: int = DEFAULT_HISTORY) -> None:
        """``revision`` is the newest revision already applied; ``first_available`` the
        oldest one a watch may start from (etcd's compact revision)."""
        self.revision = revision
        self.first_available = first_available
        self._limit = limit
        # Entries are tuples of gc=False structs, which the collector stops tracking after
        # its first look at them: a log of lists would be 100,000 tracked objects that every
        # full collection walks (tens of ms under a steady write load, the writes' p99).
        self._log: deque[tuple[int, tuple[Event, ...]]] = deque()
        self._events = 0
        self._signal = asyncio.Event()
        self._waiting = 0
        self._closed = False

    def publish(self, revision: int, events: list[Event]) -> None:
        if revision != self.revision + 1:
            raise StoreError(f"revision {revision} published after {self.revision}")
        self.revision = revision
        self._log.append((revision, tuple(events)))
        self._events += len(events)
        while self._events > self._limit and len(self._log) > 1:
            self._drop_oldest()
        self._wake()

    def compact(self, revision: int) -> None:
        """Forget every revision before ``revision``, as etcd's Compact does."""
        if revision > self.revision:
            raise StoreError(f"revision {revision} is a future revision")
        if revision < self.first_available:
            raise CompactedError(self.first_available)
        while self._log and self._log[0][0] < revision:
            self._drop_oldest()
        self.first_available = revision
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _drop_oldest(self) -> None:
        revision, events = self._log.popleft()
        self._events -= len(events)
        self.first_available = revision + 1

    def _wake(self) -> None:
        if self._waiting:
            signal, self._signal = self._signal, asyncio.Event()
            signal.set()

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """Ends quietly when the store closes, so ``async for`` consumers just stop."""
        cursor = start_revision if start_revision > 0 else self.revision + 1
        while not self._closed:
            if cursor < self.first_available:
                raise CompactedError(self.first_available)
            log = self._log
            if cursor > self.revision or not log:
                await self._wait()
                continue
            index = max(cursor - log[0][0], 0)
            revision, events = log[index]
            cursor = revision + 1
            matching = [e for e in events if e.kv.key.startswith(prefix)] if prefix else list(events)
            if matching:
                yield matching

    async def _wait(self) -> None:
        signal = self._signal
        self._waiting += 1
        try:
            await signal.wait()
        finally:
            self._waiting -= 1
