"""etcd's write semantics over plain dicts, shared by every in-process backend.

Nothing here awaits or reads a clock: each mutation returns a ``Change`` describing
what one step did, and the owning store decides when that change is durable and when
watchers may see it. That split is what lets the memory store publish at once while
the sqlite store publishes only after its group commit.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedDict

from waypost.store.base import (
    Compare,
    Delete,
    Event,
    EventType,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Put,
    Range,
    RangeResult,
    StoreError,
    TxnResult,
    check_lease_ttl,
)

__all__ = ["Change", "Keyspace", "Lease", "check_duplicates"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(slots=True)
class Lease:
    id: int
    ttl: float
    deadline: float
    keys: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Change:
    """One step's effect. ``events`` is empty when the revision did not move (a lease
    grant, or a revoke of a lease without keys); ``leases`` maps each granted lease to
    its TTL and each removed lease to None."""

    revision: int
    events: list[Event]
    leases: dict[int, float | None] = field(default_factory=dict)


class Keyspace:
    """Current keys, leases and the store revision. Revision 1 is the empty store, as in etcd."""

    def __init__(self, revision: int = 1, last_lease: int = 0) -> None:
        if revision < 1:
            raise ValueError("revision must be >= 1")
        self.kvs: SortedDict[str, KeyValue] = SortedDict()
        self.leases: dict[int, Lease] = {}
        self.revision = revision
        self.last_lease = last_lease
        self._deadlines: list[tuple[float, int]] = []

    def load(self, kvs: Iterable[KeyValue]) -> None:
        """Replace the keys wholesale (a restart); leases must be restored first."""
        self.kvs = SortedDict({kv.key: kv for kv in kvs})
        for kv in self.kvs.values():
            if kv.lease:
                self._attach(kv)

    # Reads

    def get(self, key: str) -> KeyValue | None:
        return self.kvs.get(key)

    def range(self, prefix: str) -> list[KeyValue]:
        kvs = self.kvs
        if not prefix:
            return list(kvs.values())
        found: list[KeyValue] = []
        for key in kvs.irange(minimum=prefix):
            if not key.startswith(prefix):
                break
            found.append(kvs[key])
        return found

    def _keys(self, key: str, prefix: bool) -> list[str]:
        if not prefix:
            return [key] if key in self.kvs else []
        return [kv.key for kv in self.range(key)]

    # Writes

    def put(self, key: str, value: bytes, lease: int = 0) -> Change:
        self._check_lease(lease)
        rev = self.revision + 1
        event = self._put(key, value, lease, rev)
        self.revision = rev
        return Change(rev, [event])

    def delete(self, key: str, prefix: bool = False) -> Change | None:
        events = self._delete(self._keys(key, prefix), self.revision + 1)
        if not events:
            return None
        self.revision += 1
        return Change(self.revision, events)

    def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op]
    ) -> tuple[TxnResult, Change | None]:
        """All-or-nothing: the branch is validated before any op is applied, so a
        failing op (unknown lease, duplicate key) leaves the key space untouched."""
        succeeded = all(self._holds(c) for c in compares)
        ops = success if succeeded else failure
        check_duplicates(ops)
        for op in ops:
            if isinstance(op, Put):
                self._check_lease(op.lease)
        rev = self.revision + 1
        events: list[Event] = []
        responses: list[RangeResult | int] = []
        for op in ops:
            if isinstance(op, Put):
                events.append(self._put(op.key, op.value, op.lease, rev))
                responses.append(rev)
            elif isinstance(op, Delete):
                deleted = self._delete(self._keys(op.key, op.prefix), rev)
                events.extend(deleted)
                responses.append(len(deleted))
            else:
                responses.append(self._read(op, rev if events else self.revision))
        if not events:
            return TxnResult(succeeded, self.revision, responses), None
        self.revision = rev
        return TxnResult(succeeded, rev, responses), Change(rev, events)

    def _read(self, op: Range, revision: int) -> RangeResult:
        if op.prefix:
            return RangeResult(self.range(op.key), revision)
        kv = self.kvs.get(op.key)
        return RangeResult([] if kv is None else [kv], revision)

    def _put(self, key: str, value: bytes, lease: int, rev: int) -> Event:
        old = self.kvs.get(key)
        if old is None:
            kv = KeyValue(key, value, rev, rev, 1, lease)
        else:
            if old.lease and old.lease != lease:
                self._detach(old)
            kv = KeyValue(key, value, old.create_revision, rev, old.version + 1, lease)
        self.kvs[key] = kv
        if lease:
            self._attach(kv)
        return Event(EventType.PUT, kv)

    def _delete(self, keys: Iterable[str], rev: int) -> list[Event]:
        events = []
        for key in keys:
            old = self.kvs.pop(key)
            if old.lease:
                self._detach(old)
            events.append(Event(EventType.DELETE, KeyValue(key, b"", 0, rev, 0, 0)))
        return events

    def _attach(self, kv: KeyValue) -> None:
        lease = self.leases.get(kv.lease)
        if lease is not None:
            lease.keys.add(kv.key)

    def _detach(self, kv: KeyValue) -> None:
        lease = self.leases.get(kv.lease)
        if lease is not None:
            lease.keys.discard(kv.key)

    def _holds(self, c: Compare) -> bool:
        kv = self.kvs.get(c.key)
        actual: int | bytes
        if c.target == "value":
            if not isinstance(c.value, bytes):
                raise StoreError("a value compare needs bytes")
            if kv is None:
                # etcd: comparing the value of a missing key is false whatever the operator.
                return False
            actual = kv.value
        else:
            if not isinstance(c.value, int):
                raise StoreError(f"a {c.target} compare needs an int")
            actual = _int_target(kv, c.target)
        return _OPS[c.op](actual, c.value)

    def _check_lease(self, lease: int) -> None:
        if lease and lease not in self.leases:
            raise LeaseNotFoundError(f"lease {lease} not found")

    # Leases

    def grant(self, ttl: float, now: float) -> tuple[int, Change]:
        check_lease_ttl(ttl)
        self.last_lease += 1
        lease_id = self.last_lease
        self.restore_lease(lease_id, ttl, now)
        return lease_id, Change(self.revision, [], {lease_id: ttl})

    def restore_lease(self, lease_id: int, ttl: float, now: float) -> None:
        self.leases[lease_id] = Lease(lease_id, ttl, now + ttl)
        heapq.heappush(self._deadlines, (now + ttl, lease_id))
        self.last_lease = max(self.last_lease, lease_id)

    def keepalive(self, lease_id: int, now: float) -> float:
        lease = self.leases.get(lease_id)
        if lease is None:
            raise LeaseNotFoundError(f"lease {lease_id} not found")
        lease.deadline = now + lease.ttl
        heapq.heappush(self._deadlines, (lease.deadline, lease_id))
        return lease.ttl

    def revoke(self, lease_id: int) -> Change | None:
        lease = self.leases.pop(lease_id, None)
        if lease is None:
            return None
        events = self._delete(sorted(lease.keys), self.revision + 1)
        if events:
            self.revision += 1
        return Change(self.revision, events, {lease_id: None})

    def expired(self, now: float) -> list[int]:
        """Leases whose deadline has passed, dropping stale heap entries on the way."""
        due = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, lease_id = heapq.heappop(heap)
            lease = self.leases.get(lease_id)
            if lease is not None and lease.deadline == deadline:
                due.append(lease_id)
        return due

    def next_deadline(self) -> float | None:
        heap = self._deadlines
        while heap:
            deadline, lease_id = heap[0]
            lease = self.leases.get(lease_id)
            if lease is not None and lease.deadline == deadline:
                return deadline
            heapq.heappop(heap)
        return None


def _int_target(kv: KeyValue | None, target: str) -> int:
    if kv is None:
        return 0
    if target == "version":
        return kv.version
    if target == "create":
        return kv.create_revision
    if target == "mod":
        return kv.mod_revision
    return kv.lease


def check_duplicates(ops: Sequence[Op]) -> None:
    """etcd rejects a transaction that writes one key twice, or puts a key it also deletes."""
    puts: set[str] = set()
    for op in ops:
        if isinstance(op, Put):
            if op.key in puts:
                raise StoreError("duplicate key given in txn request")
            puts.add(op.key)
    for op in ops:
        if isinstance(op, Delete) and any(
            key.startswith(op.key) if op.prefix else key == op.key for key in puts
        ):
            raise StoreError("duplicate key given in txn request")
