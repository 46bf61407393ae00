"""The state machine's owner: one store, the in-memory indexes it feeds, and the write path.

Data flows one way. Writers send transactions to the store; the store's watch stream is
applied to ``Indexes``; readers read ``Indexes``. A writer then waits until its own
revision has been applied (``wait_applied``) so that a client that writes and reads
back sees its write, exactly as Consul's Raft apply does.

Writes are optimistic: an operation computes its transaction from the indexes and
guards it with ``mod_revision`` compares. If another writer (another server agent on the
same etcd) got there first, the compare fails, we catch up to the store and recompute.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, Sequence

from waypost.state import schema
from waypost.state.indexes import Indexes, Rejected
from waypost.store.base import CompactedError, Compare, Event, EventType, Op, Put, Store, TxnResult

__all__ = ["ConflictError", "State", "TxnPlan"]

log = logging.getLogger("waypost.state")

_NAMED = 20
"""How many skipped keys the start-up warning names; the metric counts them all."""

TxnPlan = tuple[Sequence[Compare], Sequence[Op]]
"""What a write wants: compares that must hold, and the ops to apply if they do."""


class ConflictError(Exception):
    """A write kept losing races with other writers; the caller should answer 500."""


class State:
    MAX_ATTEMPTS = 16

    def __init__(self, store: Store) -> None:
        self.store = store
        self.indexes = Indexes()
        self._applied: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._feed: asyncio.Task[None] | None = None
        self._healthy = True
        self._contact = time.monotonic()
        self._ready = asyncio.Event()
        self.listeners: list[Callable[[list[Event], int], None]] = []
        self.decode_errors = 0
        """Records the indexes could not take since start-up (Consul-style counter)."""
        self.relists = 0
        """How many times the indexes were rebuilt from a full read: listeners that keep
        history (the clients' event ring) must then start it afresh, since a full read
        shows what exists, not what was deleted in between."""

    async def start(self) -> None:
        start = await self._relist()
        self._feed = asyncio.create_task(self._follow(start), name="state-feed")
        self._ready.set()

    async def close(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed
        self.indexes.topics.wake_all()

    async def _relist(self) -> int:
        snapshot = await self.store.range("")
        fresh = Indexes()
        events = [Event(EventType.PUT, kv) for kv in snapshot.kvs]
        fresh.apply(events, snapshot.revision)
        skipped = fresh.take_rejected()
        if skipped:
            known = self.indexes.quarantined
            self.decode_errors += sum(known.get(r.key) != r.revision for r in skipped)
            named = ", ".join(f"{r.key} ({r.reason})" for r in skipped[:_NAMED])
            more = f" and {len(skipped) - _NAMED} more" if len(skipped) > _NAMED else ""
            log.warning("skipping %d undecodable records: %s%s", len(skipped), named, more)
        old = self.indexes
        self.indexes = fresh
        old.topics.wake_all()
        self.relists += 1
        self._notify(events, snapshot.revision)
        return snapshot.revision + 1

    async def _follow(self, start: int) -> None:
        while True:
            try:
                async for batch in self.store.watch("", start):
                    self._healthy = True
                    if not batch:
                        continue
                    revision = batch[-1].kv.mod_revision
                    self.indexes.apply(batch, revision)
                    self._report(self.indexes.take_rejected())
                    self._notify(batch, revision)
                    start = revision + 1
            except CompactedError:
                log.warning("store history compacted; re-listing the catalog")
                start = await self._relist()
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._healthy:
                    self._contact = time.monotonic()
                self._healthy = False
                log.exception("store watch failed; retrying")
                await asyncio.sleep(0.5)

    def _report(self, rejected: list[Rejected]) -> None:
        self.decode_errors += len(rejected)
        for r in rejected:
            log.warning("quarantined undecodable record %s at revision %d: %s", r.key, r.revision, r.reason)

    def _notify(self, batch: list[Event], revision: int) -> None:
        for listener in self.listeners:
            listener(batch, revision)
        applied = self._applied
        while applied and applied[0][0] <= revision:
            _, _, fut = heapq.heappop(applied)
            if not fut.done():
                fut.set_result(None)

    def last_contact_ms(self) -> int:
        """Milliseconds since the store last delivered changes or answered a re-list:
        Consul's ``X-Consul-LastContact``, a bound on how stale a read may be. An idle
        store that is still connected reports 0."""
        if self._feed is not None and not self._feed.done() and self._healthy:
            return 0
        return int((time.monotonic() - self._contact) * 1000)

    async def wait_applied(self, revision: int) -> None:
        if self.indexes.revision >= revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._applied, (revision, self._seq, fut))
        await fut

    async def catch_up(self) -> None:
        """A linearizable read: wait until everything the store has acknowledged is applied."""
        await self.wait_applied(await self.store.revision())

    async def write(self, plan: Callable[[], TxnPlan | None]) -> TxnResult | None:
        """Apply ``plan()``'s transaction, recomputing it after a lost race.

        ``plan`` returns None when there is nothing to write (the record is unchanged),
        which keeps indexes still when clients re-send identical registrations.
        """
        for _ in range(self.MAX_ATTEMPTS):
            planned = plan()
            if planned is None:
                return None
            compares, ops = planned
            if self.indexes.quarantined:
                compares = [self._past_quarantine(c) for c in compares]
            if self.indexes.carried:
                compares, ops = self._carry_over(compares, ops)
            result = await self.store.txn(compares, ops)
            await self.wait_applied(result.revision)
            if result.succeeded:
                return result
        raise ConflictError("too many concurrent writers; try again")

    def _carry_over(self, compares: Sequence[Compare], ops: Sequence[Op]) -> TxnPlan:
        """Plans see the indexes a restored record shows, not the store's: a guard on its
        ModifyIndex means the revision that wrote it, and a write of it keeps its
        CreateIndex, as Consul's updates keep a record's CreateIndex."""
        carried = self.indexes.carried
        translated = [
            Compare(c.key, "mod", c.op, found.revision)
            if c.target == "mod" and (found := carried.get(c.key)) is not None and c.value == found.modify
            else c
            for c in compares
        ]
        kept = [
            Put(op.key, schema.carry(op.value, found.create), op.lease)
            if isinstance(op, Put) and (found := carried.get(op.key)) is not None
            else op
            for op in ops
        ]
        return translated, kept

    def _past_quarantine(self, compare: Compare) -> Compare:
        """A quarantined record reads as absent, so a plan's "still absent" guard means
        "still that record": without this, nothing could ever replace it."""
        revision = self.indexes.quarantined.get(compare.key)
        if revision is None or (compare.target, compare.op, compare.value) != ("version", "=", 0):
            return compare
        return Compare(compare.key, "mod", "=", revision)
