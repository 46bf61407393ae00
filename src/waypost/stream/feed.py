"""Per-topic change events computed from the state's change feed, and the rings that let a
reader resume.

A topic is what one stream follows: one service's healthy-or-not instances, the catalog's
service names, or a KV prefix. ``Hub.apply`` runs once per applied revision (a
``State`` listener) and turns the revision's store events into the topic-level events
that a reader of the matching list endpoint would see change: one ``Change`` per
instance, service name or key, carrying the same JSON object as that endpoint's row.
Each change is encoded once and shared by every subscriber of its topic.

A topic keeps the recent changes in a bounded ring, so a reader that reconnects with the
last index it saw gets exactly what it missed, or, once that has left the ring, is told
to expect a new snapshot (Consul's ``NewSnapshotToFollow``).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from waypost.api import shapes
from waypost.api.common import encode_json
from waypost.api.kv import kv_pair
from waypost.state import queries, schema
from waypost.state.indexes import Indexes
from waypost.store.base import Event

__all__ = ["Change", "Hub", "Listener", "Topic"]

RING = 4096
"""Changes a topic keeps for resuming readers..."""
RING_BYTES = 256 * 1024
"""...and their encoded size: past it, a new snapshot costs a reader little more than the changes."""

IDLE_TOPICS = 256
"""Topics kept (with their rings) after their last reader left, least recently used first out."""

UPSERT, DELETE = "upsert", "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One event of a topic: ``data`` is the JSON row (the last one shown, for a delete)."""

    index: int
    op: str
    key: Hashable
    data: bytes
    acl: Any
    """The row as its list endpoint's whole answer (a one-item list or map): what that
    endpoint's ACL filter tests."""
    row: Any = None
    """What ``?filter`` tests, for topics that take one."""


class Listener(Protocol):
    """A topic's subscriber, as the topic sees it."""

    def publish(self, changes: Sequence[Change]) -> None: ...

    def resnapshot(self, idx: Indexes) -> None: ...

    def acl_changed(self, idx: Indexes) -> None: ...


class Topic:
    """One followed thing: its current rows (``view``), its recent changes and its readers."""

    kind = ""

    def __init__(self, name: str, idx: Indexes) -> None:
        self.name = name
        self.ring: deque[Change] = deque()
        self._ring_bytes = 0
        self.floor = 0
        """Every change after this index is in the ring."""
        self.listeners: set[Listener] = set()
        self.view: dict[Hashable, Change] = {}
        self._sorted: list[Change] | None = None
        self.rebuild(idx)

    def rebuild(self, idx: Indexes) -> None:
        """Forget the history and take the current rows afresh (a store re-list)."""
        self.ring.clear()
        self._ring_bytes = 0
        self.floor = self.as_of(idx)
        self.view = {c.key: c for c in self.rows(idx)}
        self._sorted = None

    def rows(self, idx: Indexes) -> Iterable[Change]:
        raise NotImplementedError

    def as_of(self, idx: Indexes) -> int:
        """The index a snapshot taken now is as of: the last change to the topic can be
        earlier than the store's revision, and nothing after it touched the topic."""
        return idx.revision

    def changed(self, idx: Indexes, touched: _Touched, revision: int) -> list[Change]:
        raise NotImplementedError

    def snapshot(self, idx: Indexes) -> Sequence[Change]:
        """The current rows in the list endpoint's order; shared until the next change."""
        if self._sorted is None:
            self._sorted = [self.view[k] for k in sorted(self.view)]  # type: ignore[type-var]
        return self._sorted

    def since(self, index: int) -> list[Change] | None:
        """Changes after ``index``, or None when some of them are no longer kept."""
        if index < self.floor:
            return None
        found: list[Change] = []
        for change in reversed(self.ring):
            if change.index <= index:
                break
            found.append(change)
        found.reverse()
        return found

    def _diff(self, revision: int, fresh: dict[Hashable, Change | None]) -> list[Change]:
        """Changes for rows that are new, different or gone, and the view updated to match."""
        out: list[Change] = []
        for key, now in fresh.items():
            old = self.view.get(key)
            if now is None:
                if old is not None:
                    del self.view[key]
                    out.append(replace(old, index=revision, op=DELETE))
            elif old is None or old.data != now.data:
                self.view[key] = now
                out.append(now)
        if out:
            self._sorted = None
        return out

    def record(self, changes: list[Change]) -> None:
        ring = self.ring
        ring.extend(changes)
        self._ring_bytes += sum(len(c.data) for c in changes)
        while len(ring) > 1 and (len(ring) > RING or self._ring_bytes > RING_BYTES):
            dropped = ring.popleft()
            self._ring_bytes -= len(dropped.data)
            self.floor = dropped.index


class _Touched:
    """What one revision touched, worked out once for every topic."""

    def __init__(self, idx: Indexes, batch: Iterable[Event]) -> None:
        self.instances: set[tuple[str, str]] = set()
        self.registered: set[tuple[str, str]] = set()
        """Instances whose service or node record changed (not only a check)."""
        self.keys: list[str] = []
        self.acl = False
        """Whether a token, policy or role changed: readers' permissions may have."""
        for ev in batch:
            key = ev.kv.key
            if key.startswith(_ACL):
                self.acl = True
                continue
            if key.startswith(schema.KVS.prefix):
                self.keys.append(key[len(schema.KVS.prefix) :])
                continue
            table = next((t for t in _CATALOG if key.startswith(t.prefix)), None)
            if table is None:
                continue
            try:
                parts = table.split(key)
            except ValueError:
                continue
            node = parts[0]
            if table is schema.SERVICES:
                self.registered.add((node, parts[1]))
                continue
            check = idx.checks.get(node, {}).get(parts[1]) if table is schema.CHECKS else None
            if check is not None and check.ServiceID:
                self.instances.add((node, check.ServiceID))
                continue
            on_node = ((node, sid) for sid in idx.services.get(node, {}))
            (self.registered if table is schema.NODES else self.instances).update(on_node)
        self.instances |= self.registered


_CATALOG = (schema.NODES, schema.SERVICES, schema.CHECKS)
_ACL = (schema.ACL_TOKENS.prefix, schema.ACL_POLICIES.prefix, schema.ACL_ROLES.prefix)


class HealthTopic(Topic):
    """``/v1/health/service/<name>``: one change per instance, a CheckServiceNode."""

    kind = "health"

    def as_of(self, idx: Indexes) -> int:
        """The service's index, as ``/v1/health/service`` reports it: a client agent's view
        built from the snapshot then agrees with a blocking read of a server, so a read
        blocking on that index waits for the next change instead of answering at once."""
        return idx.service_index(self.name)

    def rows(self, idx: Indexes) -> Iterable[Change]:
        for (node, sid), svc in idx.instances.get(self.name, {}).items():
            found = self._row(idx, node, sid, svc, idx.revision)
            if found is not None:
                yield found

    def _row(self, idx: Indexes, node: str, sid: str, svc: Any, revision: int) -> Change | None:
        n = idx.nodes.get(node)
        if n is None:
            return None
        inst = queries.ServiceInstance(n, svc, idx.checks_for(node, sid))
        acl = [{"Node": {"Node": node}, "Service": {"Service": svc.Service}}]
        row = {"Node": n, "Service": svc, "Checks": inst.checks}
        return Change(revision, UPSERT, (node, sid), encode_json(shapes.check_service_node(inst)), acl, row)

    def changed(self, idx: Indexes, touched: _Touched, revision: int) -> list[Change]:
        fresh: dict[Hashable, Change | None] = {}
        for node, sid in sorted(touched.instances):
            svc = idx.services.get(node, {}).get(sid)
            if svc is not None and svc.Service == self.name:
                fresh[node, sid] = self._row(idx, node, sid, svc, revision)
            elif (node, sid) in self.view:
                fresh[node, sid] = None
        return self._diff(revision, fresh)


class CatalogTopic(Topic):
    """``/v1/catalog/services``: one change per service name, ``{name: tags}``."""

    kind = "catalog"

    def as_of(self, idx: Indexes) -> int:
        """The services table's index, as ``/v1/catalog/services`` reports it."""
        return idx.table_index("services")

    def rebuild(self, idx: Indexes) -> None:
        self._owner = {key: name for name, found in idx.instances.items() for key in found}
        super().rebuild(idx)

    def rows(self, idx: Indexes) -> Iterable[Change]:
        for name in idx.instances:
            found = self._row(idx, name, idx.revision)
            if found is not None:
                yield found

    def _row(self, idx: Indexes, name: str, revision: int) -> Change | None:
        tags: dict[str, None] = {}
        found = False
        for (node, _), svc in idx.instances.get(name, {}).items():
            if node in idx.nodes:
                found = True
                tags.update(dict.fromkeys(svc.Tags))
        if not found:
            return None
        entry = {name: list(tags)}
        return Change(revision, UPSERT, name, encode_json(entry), entry)

    def changed(self, idx: Indexes, touched: _Touched, revision: int) -> list[Change]:
        names: set[str] = set()
        for node, sid in touched.registered:
            old = self._owner.pop((node, sid), None)
            if old is not None:
                names.add(old)
            svc = idx.services.get(node, {}).get(sid)
            if svc is not None:
                self._owner[node, sid] = svc.Service
                names.add(svc.Service)
        return self._diff(revision, {name: self._row(idx, name, revision) for name in sorted(names)})


class KVTopic(Topic):
    """``/v1/kv/<prefix>?recurse``: one change per key, a KV entry or the deleted key.

    Its rows are not copied into a view (a prefix may hold the whole store): a snapshot is
    read from the indexes, and a delete carries only the key."""

    kind = "kv"

    def as_of(self, idx: Indexes) -> int:
        """The prefix's index, as ``/v1/kv/<prefix>?recurse`` reports it."""
        return idx.kv_prefix_index(self.name)

    def rows(self, idx: Indexes) -> Iterable[Change]:
        return ()

    def snapshot(self, idx: Indexes) -> Sequence[Change]:
        return _LazyRows(idx.kv_prefix(self.name), idx.revision)

    def changed(self, idx: Indexes, touched: _Touched, revision: int) -> list[Change]:
        out: list[Change] = []
        for key in touched.keys:
            if not key.startswith(self.name):
                continue
            entry = idx.kv.get(key)
            if entry is None:
                gone = {"Key": key}
                out.append(Change(revision, DELETE, key, encode_json(gone), [gone]))
            else:
                out.append(_kv_change(entry, revision))
        return out


def _kv_change(entry: Any, revision: int) -> Change:
    acl = [{"Key": entry.Key}]
    return Change(revision, UPSERT, entry.Key, encode_json(kv_pair(entry)), acl)


class _LazyRows(Sequence[Change]):
    """A KV snapshot encoded row by row as it is sent, so a reader of a large prefix costs
    a list of references until then."""

    def __init__(self, entries: list[Any], revision: int) -> None:
        self._entries = entries
        self._revision = revision

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [_kv_change(e, self._revision) for e in self._entries[i]]
        return _kv_change(self._entries[i], self._revision)

    def __iter__(self) -> Iterator[Change]:
        return (_kv_change(e, self._revision) for e in self._entries)


KINDS: dict[str, Callable[[str, Indexes], Topic]] = {
    HealthTopic.kind: HealthTopic,
    CatalogTopic.kind: CatalogTopic,
    KVTopic.kind: KVTopic,
}


class Hub:
    """Every followed topic of one state, fed one revision at a time."""

    def __init__(self) -> None:
        self._topics: OrderedDict[tuple[str, str], Topic] = OrderedDict()
        self.cut_off = 0
        """Readers disconnected for falling too far behind (a counter)."""

    def topic(self, kind: str, name: str, idx: Indexes) -> Topic:
        key = (kind, name)
        found = self._topics.get(key)
        if found is None:
            found = self._topics[key] = KINDS[kind](name, idx)
            self._evict()
        self._topics.move_to_end(key)
        return found

    def _evict(self) -> None:
        idle = [k for k, t in self._topics.items() if not t.listeners]
        for key in idle[: max(0, len(idle) - IDLE_TOPICS)]:
            del self._topics[key]

    def readers(self) -> int:
        return sum(len(t.listeners) for t in self._topics.values())

    def apply(self, idx: Indexes, batch: Iterable[Event], revision: int) -> None:
        """One applied revision: compute, record and hand out each topic's changes."""
        if not self._topics:
            return
        touched = _Touched(idx, batch)
        if touched.instances or touched.keys:
            for topic in list(self._topics.values()):
                changes = topic.changed(idx, touched, revision)
                if not changes:
                    continue
                topic.record(changes)
                for listener in list(topic.listeners):
                    listener.publish(changes)
        if touched.acl:
            for topic in list(self._topics.values()):
                for listener in list(topic.listeners):
                    listener.acl_changed(idx)

    def rebuild(self, idx: Indexes) -> None:
        """The state was re-read whole: no history survives, every reader starts afresh."""
        for topic in self._topics.values():
            topic.rebuild(idx)
            for listener in list(topic.listeners):
                listener.resnapshot(idx)
