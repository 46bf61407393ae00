from __future__ import annotations

import pytest

from waypost.state import catalog_ops, kv_ops, session_ops
from waypost.state.catalog_ops import CatalogError
from waypost.state.model import HealthCheck, Node, Session
from waypost.state.state import State

NODE = Node(Node="n1", Address="10.0.0.1")


async def test_create_validates_node_and_checks(state: State) -> None:
    with pytest.raises(CatalogError, match="Missing node registration"):
        await session_ops.create_session(state, Session(ID="", Node="ghost"))
    await catalog_ops.register(state, NODE, [], [HealthCheck(Node="n1", CheckID="bad", Name="bad")])
    with pytest.raises(CatalogError, match="Missing check 'serfHealth'"):
        await session_ops.create_session(state, Session(ID="", Node="n1", NodeChecks=["serfHealth"]))
    with pytest.raises(CatalogError, match="critical state"):
        await session_ops.create_session(state, Session(ID="", Node="n1", NodeChecks=["bad"]))
    with pytest.raises(CatalogError, match="Invalid Behavior"):
        await session_ops.create_session(state, Session(ID="", Node="n1", Behavior="nope"))


async def test_critical_check_or_missing_node_invalidates(state: State) -> None:
    await catalog_ops.register(
        state, NODE, [], [HealthCheck(Node="n1", CheckID="c", Name="c", Status="passing")]
    )
    sid = await session_ops.create_session(state, Session(ID="", Node="n1", NodeChecks=["c"]))
    assert session_ops.sessions_to_invalidate(state) == []
    await catalog_ops.register(
        state, NODE, [], [HealthCheck(Node="n1", CheckID="c", Name="c", Status="critical")]
    )
    assert session_ops.sessions_to_invalidate(state) == [sid]


async def test_destroy_with_delete_behavior_removes_held_keys(state: State) -> None:
    await catalog_ops.register(state, NODE)
    sid = await session_ops.create_session(state, Session(ID="", Node="n1", Behavior="delete"))
    await kv_ops.kv_set(state, "held", b"x", acquire=sid)
    await kv_ops.kv_set(state, "free", b"y")
    assert await session_ops.destroy_session(state, sid)
    assert list(state.indexes.kv) == ["free"]
    assert not await session_ops.destroy_session(state, sid)


async def test_expired_ttl_session_frees_its_locks_per_behavior() -> None:
    from waypost.state.kv_ops import LockDelays
    from waypost.store.memory import MemoryStore

    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    state = State(store)
    await state.start()
    try:
        await catalog_ops.register(state, NODE)
        released = await session_ops.create_session(state, Session(ID="", Node="n1"), ttl=10)
        deleted = await session_ops.create_session(
            state, Session(ID="", Node="n1", Behavior="delete"), ttl=10
        )
        await kv_ops.kv_set(state, "held", b"x", acquire=released)
        await kv_ops.kv_set(state, "gone", b"y", acquire=deleted)
        now[0] += 10 * session_ops.SESSION_TTL_MULTIPLIER + 1
        await store.expire_leases()
        await state.catch_up()
        assert state.indexes.sessions == {}
        assert await session_ops.release_orphaned_locks(state, LockDelays()) == 2
        assert state.indexes.kv["held"].Session == ""
        assert "gone" not in state.indexes.kv
    finally:
        await state.close()
