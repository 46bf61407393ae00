"""Learning from a store's history whether an interrupted transaction applied: which
revision holds exactly its writes, and when the history cannot tell."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence

import pytest

from waypost.store.base import Delete, Event, EventType, KeyValue, Op, Put, Range, RangeResult, StoreError
from waypost.store.outcome import HISTORY_LIMIT, TxnOutcomeUnknownError, holds_exactly, learn, search

log = logging.getLogger("test")


def _put(key: str, value: bytes, revision: int, lease: int = 0) -> Event:
    return Event(EventType.PUT, KeyValue(key, value, revision, revision, 1, lease))


def _deleted(key: str, revision: int) -> Event:
    return Event(EventType.DELETE, KeyValue(key, b"", 0, revision, 0))


async def _stream(batches: Sequence[list[Event]]) -> AsyncGenerator[list[Event], None]:
    for batch in batches:
        yield batch


async def _never_read(op: Range, revision: int) -> RangeResult:
    raise AssertionError("nothing to read back")


@pytest.mark.parametrize(
    ("batch", "held"),
    [
        ([_put("a", b"1", 7), _deleted("d/x", 7), _deleted("d/y", 7)], True),
        ([_put("a", b"1", 7)], True),  # the delete range held nothing to delete
        ([_put("a", b"2", 7)], False),  # another value
        ([_put("a", b"1", 7, lease=3)], False),  # another lease
        ([_put("a", b"1", 7), _put("b", b"1", 7)], False),  # a write it does not make
        ([_put("a", b"1", 7), _deleted("e/x", 7)], False),  # a delete outside its range
        ([_deleted("d/x", 7)], False),  # its put is missing
    ],
)
def test_a_revision_holds_a_transaction_only_with_exactly_its_writes(batch: list[Event], held: bool) -> None:
    ops: list[Op] = [Put("a", b"1"), Delete("d/", prefix=True), Range("a")]
    assert holds_exactly(batch, ops) is held


async def test_the_search_finds_either_branch_and_stops_at_the_revision_it_was_given() -> None:
    success: list[Op] = [Put("k", b"won")]
    failure: list[Op] = [Put("k/log", b"lost")]
    history = [[_put("other", b"x", 5)], [_put("k/log", b"lost", 6)], [_put("k", b"won", 7)]]
    assert await search(_stream(history), 7, success, failure) == (history[1], False)
    assert await search(_stream(history[:1] + history[2:]), 5, success, failure) is None
    assert await search(_stream(history[:1] + history[2:]), 7, success, failure) == (history[2], True)


async def test_a_history_that_ends_before_the_current_revision_tells_nothing() -> None:
    with pytest.raises(StoreError, match="history ended before the current revision"):
        await search(_stream([[_put("other", b"x", 5)]]), 6, [Put("k", b"v")], [])


async def test_a_history_too_long_to_read_makes_the_outcome_unknown_without_reading_it() -> None:
    async def current() -> int:
        return 10 + HISTORY_LIMIT + 1

    async def find(start: int, until: int) -> None:
        raise AssertionError("the history is not read")

    with pytest.raises(TxnOutcomeUnknownError, match=f"{HISTORY_LIMIT + 1} revisions passed"):
        await learn(
            10, [Put("k", b"v")], [], until=0, current=current, find=find, read_at=_never_read, log=log
        )


async def test_a_failed_history_read_makes_the_outcome_unknown_and_says_why() -> None:
    async def current() -> int:
        return 12

    async def find(start: int, until: int) -> None:
        raise StoreError("no server answered")

    with pytest.raises(TxnOutcomeUnknownError, match="outcome is unknown: no server answered"):
        await learn(
            10, [Put("k", b"v")], [], until=0, current=current, find=find, read_at=_never_read, log=log
        )


async def test_an_applied_transaction_is_answered_as_the_store_would_have() -> None:
    batch = [_put("k", b"v", 11), _deleted("d/a", 11), _deleted("d/b", 11)]

    async def current() -> int:
        return 12

    async def find(start: int, until: int) -> tuple[list[Event], bool]:
        assert (start, until) == (11, 12)
        return batch, True

    ops: list[Op] = [Put("k", b"v"), Delete("d/", prefix=True)]
    result = await learn(10, ops, [], until=0, current=current, find=find, read_at=_never_read, log=log)
    assert result is not None
    assert (result.succeeded, result.revision, result.responses) == (True, 11, [11, 2])
