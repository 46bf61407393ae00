"""Save and restore against a real in-memory store: records, leases and refusals."""

from __future__ import annotations

import pytest

from waypost.state import catalog_ops, kv_ops, schema, session_ops, snapshot_ops
from waypost.state.model import Node, Session
from waypost.state.snapshot import SnapshotError, decode
from waypost.state.state import State
from waypost.store.base import LeaseNotFoundError

NODE = Node(Node="n1", Address="10.0.0.1")


async def contents(state: State) -> dict[str, tuple[bytes, bool]]:
    """Each snapshotted key's value, and whether it sits on a lease."""
    read = await state.store.range("")
    return {kv.key: (kv.value, bool(kv.lease)) for kv in read.kvs if not kv.key.startswith("system/")}


async def test_restore_replaces_records_and_recreates_session_leases(state: State) -> None:
    await catalog_ops.register(state, NODE)
    sid = await session_ops.create_session(state, Session(ID="", Node="n1", TTL="10s"), ttl=10.0)
    await kv_ops.kv_set(state, "held", b"x", acquire=sid)
    data, index = await snapshot_ops.save(state)
    saved = await contents(state)
    old_lease = state.indexes.session_leases[sid]

    await kv_ops.kv_set(state, "later", b"y")
    revision = await snapshot_ops.restore(state, decode(data))

    assert revision > index
    assert await contents(state) == saved
    new_lease = state.indexes.session_leases[sid]
    assert new_lease not in (0, old_lease)
    assert await session_ops.renew_session(state, sid)
    # The replaced session's lease is gone, so it can never delete the restored session.
    with pytest.raises(LeaseNotFoundError):
        await state.store.lease_keepalive(old_lease)


async def test_a_session_ttl_that_cannot_be_read_changes_nothing(state: State) -> None:
    await catalog_ops.register(state, NODE)
    await state.store.put(schema.SESSIONS.key("s1"), schema.encode(Session(ID="s1", Node="n1", TTL="soon")))
    data, _ = await snapshot_ops.save(state)
    await state.store.delete(schema.SESSIONS.key("s1"))
    before = await contents(state)
    with pytest.raises(SnapshotError, match="invalid TTL 'soon'"):
        await snapshot_ops.restore(state, decode(data))
    assert await contents(state) == before


async def test_restoring_an_empty_snapshot_clears_the_tables(state: State) -> None:
    empty, _ = await snapshot_ops.save(state)
    await catalog_ops.register(state, NODE)
    await kv_ops.kv_set(state, "k", b"v")
    await snapshot_ops.restore(state, decode(empty))
    assert await contents(state) == {}
    assert not state.indexes.nodes
    assert not state.indexes.kv


async def test_a_zero_session_ttl_is_no_ttl(state: State) -> None:
    await catalog_ops.register(state, NODE)
    await state.store.put(schema.SESSIONS.key("s0"), schema.encode(Session(ID="s0", Node="n1", TTL="0s")))
    data, _ = await snapshot_ops.save(state)
    await snapshot_ops.restore(state, decode(data))
    assert state.indexes.sessions["s0"].TTL == "0s"
    assert state.indexes.session_leases["s0"] == 0
