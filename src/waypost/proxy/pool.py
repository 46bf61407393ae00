"""One listener's upstreams at run time: the set in force, open connections, failures.

The data planes ask ``choose`` for each new connection (or UDP session) and report back;
``update`` swaps in a watcher's answer before the next accept is balanced, and starts
draining the connections of instances that left the set: they may finish, but are cut
after the listener's ``drain_timeout`` unless their instance comes back first (a check
that flapped must not cut connections that were never in danger).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection
from typing import Protocol

from waypost.proxy.balance import Balancer, Key
from waypost.proxy.config import ListenerConfig
from waypost.proxy.outlier import OutlierDetector
from waypost.proxy.upstreams import Upstream, UpstreamUpdate

__all__ = ["Drainable", "Pool"]

MAX_ATTEMPTS = 8


class Drainable(Protocol):
    def drain(self, timeout: float) -> None:
        """Stop after ``timeout`` seconds unless finished by then."""

    def undrain(self) -> None:
        """Its instance is back in the set: keep going."""


class Pool:
    def __init__(
        self, listener: ListenerConfig, outlier: OutlierDetector, rng: random.Random | None = None
    ) -> None:
        self.listener = listener
        self.outlier = outlier
        self.balancer = Balancer(listener.balance, rng)
        self.upstreams: tuple[Upstream, ...] = ()
        self.index = 0
        self.active: Counter[Key] = Counter()
        self._open: dict[Key, set[Drainable]] = {}
        self._present: set[Key] = set()
        self._draining: set[Key] = set()

    @property
    def attempts(self) -> int:
        """How many instances one connection may try before it is refused."""
        return max(1, min(len(self.upstreams), MAX_ATTEMPTS))

    def update(self, update: UpstreamUpdate) -> None:
        self.upstreams = update.upstreams
        self.index = update.index
        self._present = {u.key for u in update.upstreams}
        self.outlier.retain(self._present)
        for key in self._draining & self._present:
            for conn in list(self._open.get(key, ())):
                conn.undrain()
        self._draining -= self._present
        for key, conns in self._open.items():
            if key not in self._present:
                self._draining.add(key)
                for conn in list(conns):
                    conn.drain(self.listener.drain_timeout)

    def choose(self, exclude: Collection[Key] = ()) -> Upstream | None:
        """The instance for a new connection; ejected ones only when nothing else is left."""
        fresh = [u for u in self.upstreams if u.key not in exclude]
        healthy = [u for u in fresh if not self.outlier.ejected(u.key)]
        return self.balancer.pick(healthy or fresh, self.active)

    def failed(self, upstream: Upstream) -> None:
        self.outlier.failure(upstream.key, f"{upstream.service_id}@{upstream.target}")

    def succeeded(self, upstream: Upstream) -> None:
        self.outlier.success(upstream.key)

    def attach(self, upstream: Upstream, conn: Drainable) -> None:
        self.active[upstream.key] += 1
        self._open.setdefault(upstream.key, set()).add(conn)
        if upstream.key not in self._present:
            self._draining.add(upstream.key)
            conn.drain(self.listener.drain_timeout)  # it left the set while we connected

    def detach(self, upstream: Upstream, conn: Drainable) -> None:
        conns = self._open.get(upstream.key)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        self.active[upstream.key] -= 1
        if not conns:
            del self._open[upstream.key]
            del self.active[upstream.key]
            self._draining.discard(upstream.key)

    def open_connections(self) -> int:
        return sum(self.active.values())
