"""Whether an interrupted transaction applied, learnt from the store's history.

A transaction whose answer was lost (a timeout, a dropped connection, a server that
failed after passing it on) may still have committed, and sending it again would
evaluate its compares against its own writes: a compare-and-swap that won would be
answered "failed". Every committed transaction has a revision of its own, so it applied
exactly if one revision after the last one seen before sending holds precisely its
writes. The etcd store (a member may time out after committing) and the remote store of
a client agent (a server may fail after applying) both reason so; this module is that
reasoning, apart from how each of them reads its history.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from waypost.store.base import Delete, Event, EventType, Op, Put, Range, RangeResult, StoreError, TxnResult

if TYPE_CHECKING:
    from waypost.store.base import Compare

__all__ = [
    "HISTORY_LIMIT",
    "Found",
    "LearningStore",
    "ReadAt",
    "TxnOutcomeUnknownError",
    "covers",
    "holds_exactly",
    "learn",
    "rebuild",
    "search",
]

HISTORY_LIMIT = 20_000
"""The most revisions read back to learn whether an interrupted transaction applied."""

Found = tuple[list[Event], bool]
"""The revision's events that hold the transaction's writes, and which branch they are."""

ReadAt = Callable[[Range, int], Awaitable[RangeResult]]
"""A read of ``Range`` as the store was at a past revision."""


class TxnOutcomeUnknownError(StoreError):
    """A transaction was interrupted and whether it applied could not be learnt; read its
    keys to find out. Raised rather than guessing, so no answer is ever a wrong one."""


def covers(op: Op, key: str) -> bool:
    """Whether ``key`` is inside what ``op`` reads or writes."""
    return key.startswith(op.key) if not isinstance(op, Put) and op.prefix else key == op.key


def holds_exactly(batch: list[Event], ops: Sequence[Op]) -> bool:
    """Whether one revision's events are precisely what ``ops`` would write: every put
    with its value and lease, and deletes only of keys inside ``ops``' delete ranges."""
    puts = {op.key: op for op in ops if isinstance(op, Put)}
    deletes = [op for op in ops if isinstance(op, Delete)]
    if not puts and not deletes:
        return False
    written = 0
    for ev in batch:
        kv = ev.kv
        if ev.type is EventType.PUT:
            put = puts.get(kv.key)
            if put is None or (put.value, put.lease) != (kv.value, kv.lease):
                return False
            written += 1
        elif not any(covers(op, kv.key) for op in deletes):
            return False
    return written == len(puts)


async def search(
    batches: AsyncGenerator[list[Event], None], until: int, success: Sequence[Op], failure: Sequence[Op]
) -> Found | None:
    """The revision up to ``until`` that holds exactly the writes of ``success`` (True)
    or of ``failure`` (False), from ``batches``: every revision of the store in order, one
    list per revision. Each revision carries at least one event, so the stream reaches
    ``until``'s; one that ends first raises ``StoreError``. Closes ``batches``."""
    async with contextlib.aclosing(batches):
        async for batch in batches:
            revision = batch[0].kv.mod_revision
            if revision > until:
                return None
            for succeeded, ops in ((True, success), (False, failure)):
                if holds_exactly(batch, ops):
                    return batch, succeeded
            if revision == until:
                return None
    raise StoreError("the history ended before the current revision")


async def rebuild(batch: list[Event], succeeded: bool, ops: Sequence[Op], read_at: ReadAt) -> TxnResult:
    """The answer the store would have given for ``ops`` applied as ``batch``."""
    revision = batch[0].kv.mod_revision
    responses: list[RangeResult | int] = []
    for index, op in enumerate(ops):
        if isinstance(op, Put):
            responses.append(revision)
        elif isinstance(op, Delete):
            responses.append(sum(1 for ev in batch if ev.type is EventType.DELETE and covers(op, ev.kv.key)))
        else:
            responses.append(await _range_within(op, batch, ops[:index], read_at))
    return TxnResult(succeeded, revision, responses)


async def _range_within(op: Range, batch: list[Event], earlier: Sequence[Op], read_at: ReadAt) -> RangeResult:
    """A Range inside a committed transaction saw the revision before it plus the
    writes of the ops before it; each of those wrote its keys once, as in ``batch``."""
    revision = batch[0].kv.mod_revision
    before = await read_at(op, revision - 1)
    kvs = {kv.key: kv for kv in before.kvs}
    writers = [o for o in earlier if not isinstance(o, Range)]
    for ev in batch:
        key = ev.kv.key
        if not covers(op, key) or not any(covers(w, key) for w in writers):
            continue
        if ev.type is EventType.PUT:
            kvs[key] = ev.kv
        else:
            kvs.pop(key, None)
    return RangeResult(sorted(kvs.values(), key=lambda kv: kv.key), revision if writers else revision - 1)


async def learn(
    floor: int,
    success: Sequence[Op],
    failure: Sequence[Op],
    *,
    until: int,
    current: Callable[[], Awaitable[int]],
    find: Callable[[int, int], Awaitable[Found | None]],
    read_at: ReadAt,
    log: logging.Logger,
) -> TxnResult | None:
    """The result of the transaction if it committed after ``floor`` (up to ``until``,
    when 0 the ``current`` revision), rebuilt from the revision that holds its writes;
    None if it had not. ``find(start, until)`` searches the history from ``start``.
    Raises ``TxnOutcomeUnknownError`` when the history cannot be read."""
    if all(isinstance(op, Range) for op in (*success, *failure)):
        return None  # nothing it does can be seen, so sending it again is safe
    try:
        until = until or await current()
        if until - floor > HISTORY_LIMIT:
            raise TxnOutcomeUnknownError(f"{until - floor} revisions passed since the transaction was sent")
        if until <= floor:
            return None
        found = await find(floor + 1, until)
        if found is None:
            log.info("interrupted transaction had not applied by revision %d", until)
            return None
        batch, succeeded = found
        log.info("interrupted transaction had applied at revision %d", batch[0].kv.mod_revision)
        return await rebuild(batch, succeeded, success if succeeded else failure, read_at)
    except TxnOutcomeUnknownError:
        raise
    except StoreError as exc:
        raise TxnOutcomeUnknownError(
            f"the transaction was interrupted and its outcome is unknown: {exc}"
        ) from exc


class LearningStore(ABC):
    """A store that reaches its data over a network (etcd's, a client agent's): every
    write is a transaction, so that one whose answer was lost is never re-sent blindly
    but has its outcome learnt (``learn``) from the revisions after ``floor``."""

    _log: ClassVar[logging.Logger]

    def __init__(self) -> None:
        self._seen = 0
        """The highest store revision any answer carried: no older than any write to come."""

    def _saw(self, revision: int) -> int:
        self._seen = max(self._seen, revision)
        return revision

    async def _floor(self) -> int:
        """The revision a transaction about to be sent cannot have committed at or before."""
        return self._seen or await self.revision()

    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        return (await self.txn([], [Put(key, value, lease)])).revision

    async def delete(self, key: str, prefix: bool = False) -> tuple[int, int]:
        result = await self.txn([], [Delete(key, prefix)])
        deleted = result.responses[0]
        return (deleted if isinstance(deleted, int) else 0), result.revision

    @abstractmethod
    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult: ...

    @abstractmethod
    async def revision(self) -> int: ...

    @abstractmethod
    async def _find(
        self, start: int, until: int, success: Sequence[Op], failure: Sequence[Op]
    ) -> Found | None:
        """``search`` over this store's history from revision ``start``."""

    @abstractmethod
    async def _read_at(self, op: Range, revision: int) -> RangeResult:
        """``op`` as the store was at ``revision``, for a Range inside a transaction learnt."""

    async def _applied(
        self, floor: int, success: Sequence[Op], failure: Sequence[Op], until: int = 0
    ) -> TxnResult | None:
        """The result of the transaction if it committed after ``floor`` (up to ``until``,
        by default the current revision), from the revision that holds its writes."""

        async def find(start: int, end: int) -> Found | None:
            return await self._find(start, end, success, failure)

        return await learn(
            floor,
            success,
            failure,
            until=until,
            current=self.revision,
            find=find,
            read_at=self._read_at,
            log=self._log,
        )
