"""Change indexes per topic and the waiters parked on them.

A topic is a small tuple naming what a reader depends on: a table (``("nodes",)``), one
service (``("service", "web")``), one node, one KV key or KV prefix. Applying a store
revision touches a handful of topics; only the waiters on those topics wake. This is the
fix for Consul's most common complaint, blocking queries woken by unrelated writes.

KV prefixes are matched by walking the prefixes of the changed key (``len(key) + 1``
dict look-ups), so a write costs the same whether 10 or 10,000 prefixes are watched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

__all__ = ["Topic", "Topics", "Waiter"]

Topic = tuple[str, ...]

MAX_TRACKED_PREFIXES = 65536


class Waiter:
    """One parked reader; registered on several topics, woken once by the first.

    Woken either through ``future`` or, when parked with a callback, by calling it right
    away: blocking queries use the callback, which saves a scheduling round per waiter
    when thousands wake at once. ``count`` is how many blocking queries it stands for (a
    group of parked queries of one read shares one waiter)."""

    __slots__ = ("callback", "count", "future", "topics", "woken")

    def __init__(self, topics: Iterable[Topic], callback: Callable[[], None] | None = None) -> None:
        self.topics = tuple(topics)
        self.callback = callback
        self.woken = False
        self.count = 1
        self.future: asyncio.Future[None] | None = (
            None if callback is not None else asyncio.get_running_loop().create_future()
        )

    def wake(self) -> None:
        if self.woken:
            return
        self.woken = True
        if self.callback is not None:
            self.callback()
        elif self.future is not None and not self.future.done():
            self.future.set_result(None)


class Topics:
    """Last-change revision per topic, and the waiters to wake on the next change."""

    def __init__(self) -> None:
        self._index: dict[Topic, int] = {}
        self._waiters: dict[Topic, set[Waiter]] = {}
        self._prefix_watches = 0
        self._tracked_prefixes: set[str] = set()
        self._due: list[set[Waiter]] = []
        self._prefix_floor = 0
        self._last = 0

    def index(self, topic: Topic, default: int = 0) -> int:
        if topic[0] == "kv-prefix":
            return max(self._index.get(topic, default), self._prefix_floor)
        return self._index.get(topic, default)

    def touch(self, topics: Iterable[Topic], revision: int) -> None:
        waiters = self._waiters
        self._last = revision
        for topic in topics:
            self._index[topic] = revision
            parked = waiters.pop(topic, None)
            if parked:
                self._due.append(parked)

    def flush(self) -> None:
        """Wake the waiters of everything touched since the last flush. Called once a whole
        revision is applied, so a woken reader never sees half a transaction."""
        due, self._due = self._due, []
        for parked in due:
            _wake(parked)

    def touch_kv(self, key: str, revision: int) -> None:
        """A KV key changed: wake exact-key waiters and every waiter on a prefix of it."""
        self.touch((("kv", key),), revision)
        tracked = self._tracked_prefixes
        if not self._prefix_watches and not tracked:
            return
        waiters = self._waiters
        for i in range(len(key) + 1):
            topic = ("kv-prefix", key[:i])
            if topic[1] in tracked:
                self._index[topic] = revision
            found = waiters.pop(topic, None)
            if found:
                self._prefix_watches -= len(found)
                self._due.append(found)

    def track(self, topics: Iterable[Topic]) -> None:
        """Keep a change index for these KV prefixes from now on (cached answers need one).

        Exact topics always have an index; a prefix's would cost a walk of every write's
        key, so only prefixes somebody reads are tracked, up to a bound."""
        for topic in topics:
            if topic[0] == "kv-prefix" and topic[1] not in self._tracked_prefixes:
                if len(self._tracked_prefixes) >= MAX_TRACKED_PREFIXES:
                    for prefix in self._tracked_prefixes:
                        self._index.pop(("kv-prefix", prefix), None)
                    self._tracked_prefixes.clear()
                    self._prefix_floor = self._last
                self._tracked_prefixes.add(topic[1])

    def park(self, topics: Iterable[Topic], callback: Callable[[], None] | None = None) -> Waiter:
        waiter = Waiter(topics, callback)
        waiters = self._waiters
        for topic in waiter.topics:
            parked = waiters.get(topic)
            if parked is None:
                waiters[topic] = parked = set()
            parked.add(waiter)
            if topic[0] == "kv-prefix":
                self._prefix_watches += 1
        return waiter

    def unpark(self, waiter: Waiter) -> None:
        for topic in waiter.topics:
            parked = self._waiters.get(topic)
            if parked is not None and waiter in parked:
                parked.discard(waiter)
                if topic[0] == "kv-prefix":
                    self._prefix_watches -= 1
                if not parked:
                    del self._waiters[topic]

    def wake_all(self) -> None:
        """Release every parked reader (store re-list after compaction, shutdown)."""
        for parked in self._waiters.values():
            _wake(parked)
        self._waiters.clear()
        self._prefix_watches = 0

    def waiter_count(self) -> int:
        """Parked readers (one waiter may wait on several topics, and stand for several)."""
        return sum(w.count for w in set().union(*self._waiters.values()))


def _wake(waiters: set[Waiter]) -> None:
    for w in waiters:
        w.wake()
