"""The /v1/txn planner over a real state machine (memory store): guards, one op per key, indexes."""

from __future__ import annotations

from waypost.api.txn_ops import KVOp, NodeOp, ServiceOp
from waypost.api.txn_plan import PENDING, Planner
from waypost.state import catalog_ops, kv_ops, schema
from waypost.state.model import Coordinate, Node, NodeService
from waypost.state.state import State
from waypost.store.base import Put
from waypost.store.keyspace import check_duplicates


def planned(state: State, *ops: KVOp | NodeOp | ServiceOp) -> Planner:
    planner = Planner(state.indexes)
    planner.run(ops)
    assert planner.errors == []
    return planner


async def test_each_key_gets_one_op_holding_its_last_state(state: State) -> None:
    await kv_ops.kv_set(state, "gone", b"x")
    planner = planned(
        state,
        KVOp("set", "k", b"1"),
        KVOp("set", "k", b"2"),
        KVOp("delete", "gone"),
        KVOp("set", "born-and-gone", b"x"),
        KVOp("delete", "born-and-gone"),
    )
    plan = planner.store_plan()
    assert plan is not None
    compares, ops = plan
    assert [type(op).__name__ + ":" + op.key for op in ops] == ["Put:kv/k", "Delete:kv/gone"]
    assert sorted(c.key for c in compares) == ["kv/born-and-gone", "kv/gone", "kv/k"]


async def test_unchanged_writes_plan_nothing_and_keep_their_indexes(state: State) -> None:
    await kv_ops.kv_set(state, "same", b"v", flags=3)
    index = state.indexes.kv["same"].ModifyIndex
    planner = planned(state, KVOp("set", "same", b"v", flags=3), KVOp("delete", "never-was"))
    assert planner.store_plan() is None
    assert planner.results[0][1].ModifyIndex == index


async def test_a_changed_guarded_record_fails_the_plan(state: State) -> None:
    await kv_ops.kv_set(state, "read", b"v")
    planner = planned(
        state, KVOp("check-index", "read", index=state.indexes.kv["read"].ModifyIndex), KVOp("set", "w")
    )
    plan = planner.store_plan()
    assert plan is not None
    await kv_ops.kv_set(state, "read", b"changed")
    result = await state.store.txn(*plan)
    assert not result.succeeded
    assert [kv.key for kv in (await state.store.range("kv/")).kvs] == ["kv/read"]


async def test_written_records_are_stamped_with_the_commit_revision(state: State) -> None:
    await kv_ops.kv_set(state, "old", b"v")
    created = state.indexes.kv["old"].CreateIndex
    planner = planned(
        state,
        NodeOp("set", Node(Node="n1", Address="192.0.2.1")),
        ServiceOp("set", "n1", NodeService(ID="s", Service="s")),
        KVOp("set", "old", b"new"),
    )
    assert {r[1].ModifyIndex for r in planner.results} == {PENDING}
    plan = planner.store_plan()
    assert plan is not None
    result = await state.store.txn(*plan)
    assert result.succeeded
    planner.stamp(result.revision)
    await state.wait_applied(result.revision)
    assert [r[1].ModifyIndex for r in planner.results] == [result.revision] * 3
    assert [r[1].CreateIndex for r in planner.results] == [result.revision, result.revision, created]
    assert state.indexes.nodes["n1"].ModifyIndex == result.revision
    assert all(isinstance(op, Put) for op in plan[1])


async def test_a_node_deleted_twice_drops_its_coordinates_once(state: State) -> None:
    await catalog_ops.register(state, Node(Node="n1", Address="192.0.2.1"))
    coordinate = Coordinate(Node="n1")
    await state.write(lambda: ([], [Put(schema.COORDINATES.key("n1:"), schema.encode(coordinate))]))
    node = Node(Node="n1", Address="192.0.2.2")
    plan = planned(state, NodeOp("delete", node), NodeOp("set", node), NodeOp("delete", node)).store_plan()
    assert plan is not None
    check_duplicates(plan[1])
    assert sorted(op.key for op in plan[1]) == ["catalog/nodes/n1", "coordinates/n1:"]


async def test_deletes_remove_quarantined_records(state: State) -> None:
    """A record readers could not decode reads as absent, but deleting what holds it must
    still remove it from the store, as kv delete and catalog deregister do."""
    await catalog_ops.register(state, Node(Node="n1", Address="192.0.2.1"))
    garbage = [Put(key, b"\xc1 not msgpack") for key in ("kv/bad", "kv/tree/bad", "catalog/services/n1/bad")]
    result = await state.store.txn([], garbage)
    await state.wait_applied(result.revision)
    assert set(state.indexes.quarantined) == {op.key for op in garbage}
    planner = planned(
        state,
        KVOp("delete", "bad"),
        KVOp("get-tree", "tree/"),
        KVOp("delete-tree", "tree/"),
        NodeOp("delete", Node(Node="n1")),
    )
    assert planner.results == []
    written = await state.write(planner.store_plan)
    assert written is not None
    assert [
        kv.key for kv in (await state.store.range("")).kvs if kv.key.startswith(("kv/", "catalog/"))
    ] == []
