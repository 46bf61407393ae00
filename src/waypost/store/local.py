"""The ``Store`` over an in-process ``Keyspace``: what the memory and sqlite stores share.

Every write is applied to the key space synchronously, on the event loop, which is
what serialises writers and makes compares race-free without locks. The resulting
``Change`` then goes through ``_record``: the memory store publishes it to watchers at
once, the sqlite store first makes it durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from waypost.store.base import Compare, Event, KeyValue, Op, RangeResult, StoreError, TxnResult
from waypost.store.history import History
from waypost.store.keyspace import Change, Keyspace

__all__ = ["Clock", "LocalStore"]

log = logging.getLogger("waypost.store")

Clock = Callable[[], float]
"""Monotonic seconds; tests pass a hand-driven clock to control lease expiry."""

_MAX_SLEEP = 1.0
"""The expiry task re-reads the clock at least this often, so an injected clock that
jumps is noticed without a wake-up."""


class LocalStore:
    def __init__(self, keyspace: Keyspace, *, clock: Clock, first_available: int, history_limit: int) -> None:
        self._keys = keyspace
        self._clock = clock
        self._history = History(keyspace.revision, first_available, history_limit)
        self._expiry: asyncio.Task[None] | None = None
        self._lease_added = asyncio.Event()
        self._closed = False

    async def _record(self, change: Change) -> None:
        """Settle ``change`` before its writer is answered; the sqlite store makes it durable
        here before publishing it."""
        self._publish(change)

    def _publish(self, change: Change) -> None:
        if change.events:
            self._history.publish(change.revision, change.events)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")
        if self._expiry is None:
            # Started on first use, because a store may be built before the loop runs.
            self._expiry = asyncio.get_running_loop().create_task(self._expire_loop(), name="lease-expiry")

    async def get(self, key: str) -> KeyValue | None:
        self._check_open()
        return self._keys.get(key)

    async def range(self, prefix: str) -> RangeResult:
        self._check_open()
        return RangeResult(self._keys.range(prefix), self._keys.revision)

    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        self._check_open()
        change = self._keys.put(key, value, lease)
        await self._record(change)
        return change.revision

    async def delete(self, key: str, prefix: bool = False) -> tuple[int, int]:
        self._check_open()
        change = self._keys.delete(key, prefix)
        if change is None:
            return 0, self._keys.revision
        await self._record(change)
        return len(change.events), change.revision

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        self._check_open()
        result, change = self._keys.txn(compares, success, failure)
        if change is not None:
            await self._record(change)
        return result

    async def revision(self) -> int:
        self._check_open()
        return self._keys.revision

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        self._check_open()
        return self._history.watch(prefix, start_revision)

    async def compact(self, revision: int) -> None:
        """Drop watch history before ``revision`` (etcd's Compact)."""
        self._check_open()
        self._history.compact(revision)

    async def lease_grant(self, ttl: float) -> int:
        self._check_open()
        lease_id, change = self._keys.grant(ttl, self._clock())
        await self._record(change)
        self._lease_added.set()
        return lease_id

    async def lease_keepalive(self, lease: int) -> float:
        self._check_open()
        return self._keys.keepalive(lease, self._clock())

    async def lease_revoke(self, lease: int) -> None:
        self._check_open()
        change = self._keys.revoke(lease)
        if change is not None:
            await self._record(change)

    async def expire_leases(self) -> int:
        """Revoke every lease past its deadline on the store's clock, each in its own
        revision as etcd does; returns how many expired."""
        due = self._keys.expired(self._clock())
        for lease_id in due:
            await self.lease_revoke(lease_id)
        return len(due)

    async def _expire_loop(self) -> None:
        while True:
            try:
                await self.expire_leases()
            except StoreError:
                log.exception("lease expiry failed; retrying")
            deadline = self._keys.next_deadline()
            delay = _MAX_SLEEP if deadline is None else deadline - self._clock()
            self._lease_added.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lease_added.wait(), min(max(delay, 0.0), _MAX_SLEEP))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._history.close()
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
