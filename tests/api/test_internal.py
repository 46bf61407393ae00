"""The event ring that client agents' watches read through a server."""

from __future__ import annotations

from waypost.api.internal import EventRing
from waypost.state.state import State
from waypost.store.memory import MemoryStore


async def test_ring_serves_batches_from_a_revision_and_reports_what_it_dropped() -> None:
    state = State(MemoryStore())
    await state.start()
    try:
        ring = EventRing(state, size=3)
        start = ring.first_available
        revisions = []
        for i in range(5):
            revisions.append(await state.store.put(f"k{i}", b"v"))
            await state.wait_applied(revisions[-1])
        assert ring.since(start) is None
        tail = ring.since(revisions[-2])
        assert tail is not None
        assert [batch[0].kv.key for batch in tail] == ["k3", "k4"]
        assert ring.since(revisions[-1] + 1) == []
        assert ring.first_available == revisions[2]
    finally:
        await state.close()
