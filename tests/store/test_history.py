"""The watch history: what it keeps, and that keeping it costs the garbage collector nothing."""

from __future__ import annotations

import gc

from waypost.store.base import Event, EventType, KeyValue
from waypost.store.history import History


def _event(revision: int) -> Event:
    return Event(EventType.PUT, KeyValue(f"k{revision % 100}", b"v", 2, revision, 1))


async def test_a_full_history_leaves_nothing_for_the_collector_to_walk() -> None:
    """Every full collection walks every tracked object; a history of 20,000 revisions
    held as tracked lists made each of them tens of milliseconds under write load."""
    history = History(revision=1, first_available=1, limit=20_000)
    gc.collect()
    before = len(gc.get_objects())
    for revision in range(2, 20_002):
        history.publish(revision, [_event(revision)])
    gc.collect()
    assert len(gc.get_objects()) - before < 1_000


async def test_a_watch_from_the_past_reads_the_kept_revisions_by_prefix() -> None:
    history = History(revision=1, first_available=1, limit=100)
    for revision in range(2, 12):
        history.publish(revision, [_event(revision)])
    seen: list[list[Event]] = []
    async for batch in history.watch("k1", 9):
        seen.append(batch)
        if batch[-1].kv.mod_revision == 11:
            break
    assert [[e.kv.key for e in b] for b in seen] == [["k10"], ["k11"]]
