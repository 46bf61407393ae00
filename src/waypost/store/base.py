"""The one seam between waypost's state machine and the bytes that hold it.

The interface copies etcd v3's semantics on purpose: a cluster deployment keeps the
catalog in a real etcd, so every other backend (memory for ``-dev``, sqlite for the
embedded durable store) must behave exactly like it. A single contract test suite
(``tests/store/test_contract.py``) runs against every backend.

Model:
- one store-wide ``revision`` that every successful write (a put, a delete of at
  least one key, or a transaction with at least one effective write) raises by one;
- each key holds ``(value, create_revision, mod_revision, version, lease)``;
  ``version`` counts writes since creation and resets when the key is deleted;
- a transaction compares some keys, then applies either its success or its failure
  operations atomically, all under one new revision;
- watchers receive every event after a start revision, in order, batched per revision;
- leases expire after their TTL unless kept alive, deleting their keys.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol, runtime_checkable

import msgspec

__all__ = [
    "CompactedError",
    "Compare",
    "Delete",
    "Event",
    "EventType",
    "KeyValue",
    "LeaseNotFoundError",
    "Op",
    "Put",
    "Range",
    "RangeResult",
    "Store",
    "StoreError",
    "TxnResult",
    "TxnTooLargeError",
    "check_lease_ttl",
    "prefix_end",
]


class StoreError(Exception):
    """A backend failed in a way the caller cannot fix by retrying the same call."""


class CompactedError(StoreError):
    """A watch asked for history older than the backend keeps; re-list and watch from now.

    ``compact_revision`` is etcd's: the oldest revision a watch may still start from.
    """

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"history before revision {compact_revision} has been compacted")
        self.compact_revision = compact_revision


class LeaseNotFoundError(StoreError):
    """The lease expired or was revoked."""


class TxnTooLargeError(StoreError):
    """The store refused a transaction for its size alone, applying none of it: etcd's
    ``--max-txn-ops`` (128 operations by default) or ``--max-request-bytes`` (1.5 MiB).
    ``setting`` names the one to raise; smaller transactions would be taken."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class KeyValue(msgspec.Struct, frozen=True, gc=False):
    """A msgspec struct kept out of the garbage collector: stores and watch histories
    hold hundreds of thousands of these, and they never form cycles."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


class EventType(Enum):
    PUT = "put"
    DELETE = "delete"


class Event(msgspec.Struct, frozen=True, gc=False):
    """One change. For DELETE, ``kv`` carries the key, the deleting revision as
    ``mod_revision`` and empty value, as etcd does."""

    type: EventType
    kv: KeyValue


@dataclass(frozen=True, slots=True)
class Compare:
    """``target`` of ``key`` compared with ``value`` using ``op``.

    A missing key has ``version``/``create``/``mod``/``lease`` 0; so
    ``Compare(key, "version", "=", 0)`` means "does not exist", as in etcd. As in etcd
    too, any ``value`` compare on a missing key is false, whatever the operator.
    """

    key: str
    target: Literal["value", "version", "create", "mod", "lease"]
    op: Literal["=", "!=", "<", ">"]
    value: int | bytes


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete ``key``, or every key starting with ``key`` when ``prefix``."""

    key: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Range:
    """Read ``key``, or every key starting with ``key`` when ``prefix`` (sorted by key)."""

    key: str
    prefix: bool = False


Op = Put | Delete | Range


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    revision: int


@dataclass(slots=True)
class TxnResult:
    """``responses`` line up with the applied branch's ops: a ``RangeResult`` for a
    Range, the number of deleted keys for a Delete, the new revision for a Put."""

    succeeded: bool
    revision: int
    responses: list[RangeResult | int] = field(default_factory=list)


def prefix_end(prefix: str) -> str:
    """The first key after every key that starts with ``prefix`` (etcd's range_end)."""
    return prefix + "\U0010ffff"


def check_lease_ttl(ttl: float) -> float:
    """``ttl`` when it is a lease's TTL, else ValueError: every backend refuses the same
    TTLs, before anything is sent or granted (etcd itself would quietly raise zero or a
    negative TTL to its minimum, and fail on one past its range)."""
    if not 0 < ttl < math.inf:
        raise ValueError(f"lease TTL must be a positive number of seconds, not {ttl!r}")
    return ttl


@runtime_checkable
class Store(Protocol):
    """A revisioned key-value store with etcd's semantics. Keys are str, values bytes."""

    async def get(self, key: str) -> KeyValue | None: ...

    async def range(self, prefix: str) -> RangeResult:
        """Every key starting with ``prefix``, sorted, and the store revision read at."""
        ...

    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        """Set ``key``; returns the new revision."""
        ...

    async def delete(self, key: str, prefix: bool = False) -> tuple[int, int]:
        """Returns ``(deleted_count, revision)``; the revision is unchanged when nothing was deleted."""
        ...

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        """Ops apply in order and a Range sees earlier ops of the same branch. As in etcd,
        a branch that writes one key twice (or puts a key it also deletes) raises
        ``StoreError``, and a Put on an unknown lease raises ``LeaseNotFoundError``; either
        way nothing is applied."""
        ...

    async def revision(self) -> int:
        """The current store revision (``?consistent`` reads use this to catch up)."""
        ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """Events for keys under ``prefix`` with revision >= ``start_revision``, one list per
        revision, in order, until the store closes (then the iteration just ends).
        ``start_revision`` 0 means "from the next write". Raises ``CompactedError`` when
        history is gone, at the start or later for a watcher that fell too far behind."""
        ...

    async def lease_grant(self, ttl: float) -> int:
        """A new lease id (> 0) that expires ``ttl`` seconds from now (etcd rounds ``ttl`` up
        to whole seconds). A ``ttl`` that is not positive raises ValueError."""
        ...

    async def lease_keepalive(self, lease: int) -> float:
        """Restart the lease's TTL; returns the TTL. Raises ``LeaseNotFoundError``."""
        ...

    async def lease_revoke(self, lease: int) -> None:
        """Delete the lease and every key attached to it (no error if already gone)."""
        ...

    async def close(self) -> None: ...
