from __future__ import annotations

import pytest

from waypost.state import catalog_ops, kv_ops, session_ops
from waypost.state.kv_ops import KVError, LockDelays
from waypost.state.model import Node, Session
from waypost.state.state import State
from waypost.testing import ManualClock


async def _session(state: State, **kw: object) -> str:
    await catalog_ops.register(state, Node(Node="n1", Address="10.0.0.1"))
    return await session_ops.create_session(state, Session(ID="", Node="n1", **kw))  # type: ignore[arg-type]


async def test_cas_semantics(state: State) -> None:
    assert await kv_ops.kv_set(state, "k", b"v", cas=0)
    assert not await kv_ops.kv_set(state, "k", b"v", cas=0)
    index = state.indexes.kv["k"].ModifyIndex
    assert not await kv_ops.kv_set(state, "k", b"w", cas=index + 1)
    assert await kv_ops.kv_set(state, "k", b"w", cas=index)
    assert not await kv_ops.kv_delete(state, "k", cas=0)
    assert await kv_ops.kv_delete(state, "k", cas=state.indexes.kv["k"].ModifyIndex)
    assert "k" not in state.indexes.kv


async def test_acquire_release_and_lock_index(state: State) -> None:
    sid = await _session(state)
    other = await session_ops.create_session(state, Session(ID="", Node="n1"))
    assert await kv_ops.kv_set(state, "lock", b"a", acquire=sid)
    assert await kv_ops.kv_set(state, "lock", b"b", acquire=sid)
    assert state.indexes.kv["lock"].LockIndex == 1
    assert not await kv_ops.kv_set(state, "lock", b"c", acquire=other)
    assert await kv_ops.kv_set(state, "lock", b"plain")
    assert state.indexes.kv["lock"].Session == sid
    assert not await kv_ops.kv_set(state, "lock", b"x", release=other)
    assert await kv_ops.kv_set(state, "lock", b"x", release=sid)
    assert state.indexes.kv["lock"].Session == ""
    with pytest.raises(KVError, match="invalid session"):
        await kv_ops.kv_set(state, "lock", b"x", acquire="no-such-session")


async def test_lock_delay_blocks_reacquire_until_it_passes(state: State) -> None:
    clock = ManualClock(100.0)
    delays = LockDelays(clock)
    sid = await _session(state, LockDelay=5_000_000_000)
    assert await kv_ops.kv_set(state, "lock", b"a", acquire=sid)
    await session_ops.destroy_session(state, sid, delays)
    again = await session_ops.create_session(state, Session(ID="", Node="n1"))
    assert not await kv_ops.kv_set(state, "lock", b"b", acquire=again, lock_delays=delays)
    clock.now += 5.1
    assert await kv_ops.kv_set(state, "lock", b"b", acquire=again, lock_delays=delays)
    assert state.indexes.kv["lock"].LockIndex == 2


async def test_recursive_delete_and_prefix_index_sees_tombstones(state: State) -> None:
    for key in ("a/1", "a/2", "b/1"):
        await kv_ops.kv_set(state, key, b"x")
    before = state.indexes.kv_prefix_index("a/")
    await kv_ops.kv_delete(state, "a/2")
    assert state.indexes.kv_prefix_index("a/") > before
    assert await kv_ops.kv_delete(state, "a/", recurse=True)
    assert list(state.indexes.kv) == ["b/1"]
