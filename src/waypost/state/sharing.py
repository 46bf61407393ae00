"""One object for each repeated value in the catalog's records.

A decoded record gets its own copy of every string and container, so 100,000 instances
hold 100,000 copies of ``"passing"``, of their service's name and tags, of their node's
name, and of empty ``Meta`` dicts. Indexed records are read-only (every reader already
shares the one indexed record; writers build new records), so equal values can be one
object: strings through ``sys.intern`` (freed with their last user), containers and
``Weights`` through pools that drop entries nothing else holds any more, so churned
tags or metadata do not accumulate.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from waypost.state.model import HealthCheck, Node, NodeService, Weights

__all__ = ["Pool", "Sharing"]

V = TypeVar("V")

_NODE_SCOPED = frozenset({"nodes", "services", "checks"})

_INTERNED: dict[type, tuple[str, ...]] = {
    NodeService: ("ID", "Service", "Address", "Kind", "Datacenter"),
    HealthCheck: (
        "Node", "CheckID", "Name", "Status", "Notes", "ServiceID", "ServiceName", "Type", "Interval",
        "Timeout",
    ),
    Node: ("Node", "Datacenter"),
}  # fmt: skip
"""The string fields of each catalog record that repeat across records (names, statuses,
intervals), interned; free text such as a check's ``Output`` is left as it is."""

_POOL_FLOOR = 1024
"""A pool is first pruned at this size, then whenever it doubles since its last prune."""


class Pool(dict[Hashable, V]):
    """Canonical values by key. An entry only the pool refers to is dropped at the next
    prune; prunes run when the pool has doubled, so their cost is amortised per insert."""

    def __init__(self) -> None:
        super().__init__()
        self._limit = _POOL_FLOOR

    def get_or_add(self, key: Hashable, make: Callable[[], V]) -> V:
        value = self.get(key)
        if value is None:
            if len(self) >= self._limit:
                self.prune()
            value = self[key] = make()
        return value

    def prune(self) -> None:
        # Two references when nothing else holds it: the pool's and getrefcount's argument.
        for key in list(self):
            if sys.getrefcount(self[key]) <= 2:
                del self[key]
        self._limit = max(_POOL_FLOOR, 2 * len(self))


class Sharing:
    """The pools of one ``Indexes``; ``record`` swaps a freshly decoded record's repeated
    values for the shared ones, in place."""

    def __init__(self) -> None:
        self.lists: Pool[list[str]] = Pool()
        self.maps: Pool[dict[str, Any]] = Pool()
        self.weights: Pool[Weights] = Pool()

    def parts(self, table: str, parts: list[str]) -> list[str]:
        """A store key's node and id parts: node-scoped keys repeat the node's name in
        every service and check of it."""
        if table in _NODE_SCOPED:
            return [sys.intern(p) for p in parts]
        return parts

    def record(self, rec: Any) -> Any:
        for name in _INTERNED.get(type(rec), ()):
            setattr(rec, name, sys.intern(getattr(rec, name)))
        if isinstance(rec, NodeService):
            rec.Tags = self.tags(rec.Tags)
            rec.Meta = self.strings(rec.Meta)
            rec.TaggedAddresses = self.empty(rec.TaggedAddresses)
            w = rec.Weights
            rec.Weights = self.weights.get_or_add((w.Passing, w.Warning), lambda: w)
        elif isinstance(rec, HealthCheck):
            rec.ServiceTags = self.tags(rec.ServiceTags)
            rec.Definition = self.empty(rec.Definition)
        elif isinstance(rec, Node):
            rec.TaggedAddresses = self.strings(rec.TaggedAddresses)
            rec.Meta = self.strings(rec.Meta)
        return rec

    def tags(self, tags: list[str]) -> list[str]:
        key = tuple(tags)
        return self.lists.get_or_add(key, lambda: [sys.intern(t) for t in key])

    def strings(self, mapping: dict[str, str]) -> dict[str, str]:
        """A string-to-string map (``Meta``), shared when equal."""
        key = frozenset(mapping.items())
        return self.maps.get_or_add(key, lambda: {sys.intern(k): sys.intern(v) for k, v in mapping.items()})

    def empty(self, mapping: dict[str, V]) -> dict[str, V]:
        """A map whose values are not hashable, shared only when empty."""
        if mapping:
            return mapping
        shared: dict[str, V] = self.maps.get_or_add(frozenset(), dict)
        return shared
