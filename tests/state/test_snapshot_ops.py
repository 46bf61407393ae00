"""Save and restore against real stores: records, their indexes, leases and refusals.

Most tests run on the in-memory store; the index-keeping story runs on memory, SQLite and
a real etcd (marker ``etcd``), since each assigns revisions its own way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from etcd_cluster import etcd_available, etcd_cluster
from waypost.query.definition import decode_definition
from waypost.query.ops import create_query
from waypost.state import acl_ops, catalog_ops, kv_ops, schema, session_ops, snapshot_ops
from waypost.state import snapshot as archive
from waypost.state.model import ACLPolicy, HealthCheck, KVEntry, Node, NodeService, Session
from waypost.state.snapshot import SnapshotError, decode
from waypost.state.state import State
from waypost.store.base import LeaseNotFoundError, Store
from waypost.store.etcd import EtcdStore
from waypost.store.memory import MemoryStore
from waypost.store.sqlite import SqliteStore

NODE = Node(Node="n1", Address="10.0.0.1")


@pytest.fixture(params=["memory", "sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
async def any_state(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[State]:
    """A state over each backend; etcd is started afresh, as the state owns its whole keyspace."""
    with contextlib.ExitStack() as stack:
        store: Store
        if request.param == "memory":
            store = MemoryStore()
        elif request.param == "sqlite":
            store = SqliteStore(tmp_path / "store.db")
        else:
            if not etcd_available():
                pytest.skip("etcd is not installed")
            store = EtcdStore(stack.enter_context(etcd_cluster(tmp_path)).endpoints)
        state = State(store)
        await state.start()
        yield state
        await state.close()
        await store.close()


async def contents(state: State) -> dict[str, tuple[bytes, bool]]:
    """Each snapshotted key's record (without indexes it carries), and whether it sits on a lease."""
    read = await state.store.range("")
    return {
        kv.key: (schema.carried(kv.value)[0], bool(kv.lease))
        for kv in read.kvs
        if not kv.key.startswith("system/")
    }


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


async def test_a_query_bound_to_a_ttl_session_is_restored_on_its_new_lease(state: State) -> None:
    await catalog_ops.register(state, NODE)
    sid = await session_ops.create_session(state, Session(ID="", Node="n1", TTL="10s"), ttl=10.0)
    bound = await create_query(state, decode_definition({"Session": sid, "Service": {"Service": "web"}}))
    data, _ = await snapshot_ops.save(state)
    await snapshot_ops.restore(state, decode(data))
    read = await state.store.get(schema.PREPARED_QUERIES.key(bound))
    assert read is not None
    assert read.lease == state.indexes.session_leases[sid] != 0
    await session_ops.destroy_session(state, sid)
    assert bound not in state.indexes.prepared_queries


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


def shown(state: State) -> dict[str, tuple[int, int]]:
    """(CreateIndex, ModifyIndex) of every record the indexes hold that has them."""
    idx = state.indexes
    tables = {
        schema.NODES.prefix: idx.nodes,
        schema.SESSIONS.prefix: idx.sessions,
        schema.ACL_POLICIES.prefix: idx.acl_policies,
        schema.KVS.prefix: idx.kv,
    }
    out = {
        prefix + key: (r.CreateIndex, r.ModifyIndex)
        for prefix, recs in tables.items()
        for key, r in recs.items()
    }
    for node, services in idx.services.items():
        out.update(
            {schema.SERVICES.key(node, sid): (s.CreateIndex, s.ModifyIndex) for sid, s in services.items()}
        )
    for node, checks in idx.checks.items():
        out.update(
            {schema.CHECKS.key(node, cid): (c.CreateIndex, c.ModifyIndex) for cid, c in checks.items()}
        )
    return out


async def test_a_restore_keeps_every_records_indexes_and_writes_carry_on(any_state: State) -> None:
    state = any_state
    service = NodeService(ID="web1", Service="web", Port=80)
    check = HealthCheck(Node="n1", CheckID="web-alive", Name="alive", ServiceID="web1", Status="passing")
    await catalog_ops.register(state, NODE, [service], [check])
    sid = await session_ops.create_session(state, Session(ID="", Node="n1", TTL="30s"), ttl=30.0)
    await kv_ops.kv_set(state, "app/a", b"1")
    await kv_ops.kv_set(state, "app/b", b"2")
    await kv_ops.kv_set(state, "app/held", b"3", acquire=sid)
    await acl_ops.set_policy(
        state, ACLPolicy(ID="p1", Name="readers", Rules='key_prefix "" { policy = "read" }')
    )
    data, _ = await snapshot_ops.save(state)
    saved = shown(state)
    assert {e.Key: (e.CreateIndex, e.ModifyIndex) for _, e in decode(data).entries}.items() >= saved.items()

    await kv_ops.kv_set(state, "app/a", b"changed")
    await kv_ops.kv_delete(state, "app/b")
    await catalog_ops.register(state, msgspec.structs.replace(NODE, Address="10.0.0.2"))
    before = state.indexes.kv_prefix_index("app/")
    revision = await snapshot_ops.restore(state, decode(data))

    assert shown(state) == saved
    idx = state.indexes
    restored = idx.kv["app/a"]
    # Reads report the restore's revision, never an index below one already reported.
    assert idx.kv_index(restored) == revision > before
    assert idx.kv_prefix_index("app/") == revision

    # A cas on the shown ModifyIndex holds, a wrong one fails; the write keeps CreateIndex.
    assert not await kv_ops.kv_set(state, "app/a", b"x", cas=revision)
    assert await kv_ops.kv_set(state, "app/a", b"x", cas=restored.ModifyIndex)
    rewritten = idx.kv["app/a"]
    assert rewritten.CreateIndex == restored.CreateIndex
    assert rewritten.ModifyIndex == idx.kv_index(rewritten) > revision
    # The restored session still locks, and destroying it frees what it holds.
    assert await kv_ops.kv_set(state, "app/b", b"mine", acquire=sid)
    assert idx.kv["app/b"].CreateIndex == saved[schema.KVS.key("app/b")][0]
    assert await session_ops.destroy_session(state, sid)
    assert idx.kv["app/held"].Session == ""
    # Catalog and ACL updates keep CreateIndex too.
    await catalog_ops.register(state, msgspec.structs.replace(NODE, Address="10.0.0.3"))
    assert idx.nodes["n1"].CreateIndex == saved[schema.NODES.key("n1")][0]
    await acl_ops.set_policy(state, ACLPolicy(ID="p1", Name="readers", Description="d"))
    assert idx.acl_policies["p1"].CreateIndex == saved[schema.ACL_POLICIES.key("p1")][0]

    # Saved again, untouched records keep the snapshot's indexes, changed ones their own.
    again = {
        e.Key: (e.CreateIndex, e.ModifyIndex) for _, e in decode((await snapshot_ops.save(state))[0]).entries
    }
    key = schema.SERVICES.key("n1", "web1")
    assert again[key] == saved[key]
    assert again[schema.KVS.key("app/a")] == (restored.CreateIndex, rewritten.ModifyIndex)


async def test_indexes_in_a_snapshot_beyond_the_store_are_shown_as_saved(state: State) -> None:
    """A snapshot from a store further along: its indexes are shown, reads report revisions."""
    entry = archive.Entry(schema.KVS.key("far"), schema.encode(KVEntry(Key="far", Value=b"v")), 9000, 9500)
    await snapshot_ops.restore(state, archive.Snapshot(archive.Meta(1, "x", 9500, 1, 0), [(2, entry)]))
    far = state.indexes.kv["far"]
    assert (far.CreateIndex, far.ModifyIndex) == (9000, 9500)
    assert state.indexes.kv_index(far) == state.indexes.revision < 9000
    assert await kv_ops.kv_set(state, "far", b"w", cas=9500)
    assert state.indexes.kv["far"].CreateIndex == 9000


@pytest.mark.etcd
@pytest.mark.parametrize("max_txn_ops", [1000, 128])
async def test_etcd_restores_in_one_transaction_unless_it_refuses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, max_txn_ops: int
) -> None:
    """300 records: one transaction where etcd takes it, else parts and a warning naming
    the setting (etcd's default, 128, refuses it)."""
    if not etcd_available():
        pytest.skip("etcd is not installed")
    with etcd_cluster(tmp_path, flags=(f"--max-txn-ops={max_txn_ops}",)) as etcd:
        store = EtcdStore(etcd.endpoints)
        state = State(store)
        await state.start()
        try:
            for i in range(300):
                await kv_ops.kv_set(state, f"bulk/{i:03d}", b"v")
            data, _ = await snapshot_ops.save(state)
            await kv_ops.kv_delete(state, "bulk/", recurse=True)
            before = await store.revision()
            revision = await snapshot_ops.restore(state, decode(data))
        finally:
            await state.close()
            await store.close()
    restored = set(map(state.indexes.kv_index, state.indexes.kv.values()))
    warned = [r.getMessage() for r in caplog.records if "written in parts" in r.getMessage()]
    assert len(state.indexes.kv) == 300
    if max_txn_ops == 1000:
        assert (revision, restored, warned) == (before + 1, {revision}, [])
    else:
        assert revision > before + 1
        assert len(restored) > 1
        assert len(warned) == 1
        assert "too many operations in txn request" in warned[0]
        assert "etcd's --max-txn-ops to allow 300 operations" in warned[0]
