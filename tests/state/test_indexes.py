from __future__ import annotations

import msgspec
import pytest

from waypost.state import catalog_ops, schema, snapshot_ops
from waypost.state.indexes import Indexes
from waypost.state.model import (
    ConnectProxyConfig,
    Graveyard,
    HealthCheck,
    KVEntry,
    Node,
    NodeService,
    ServiceConnect,
)
from waypost.state.snapshot import decode
from waypost.state.state import State
from waypost.store.base import Event, EventType, KeyValue

BAD_NODE = msgspec.msgpack.encode({"Node": "n1", "TaggedAddresses": {"wan": 1}})


def put(key: str, value: bytes, revision: int) -> Event:
    return Event(EventType.PUT, KeyValue(key, value, revision, revision, 1))


def delete(key: str, revision: int) -> Event:
    return Event(EventType.DELETE, KeyValue(key, b"", 0, revision, 0))


def node(name: str, revision: int) -> Event:
    return put(schema.NODES.key(name), schema.encode(Node(Node=name, Address="10.0.0.1")), revision)


def test_undecodable_record_is_quarantined_and_the_rest_of_the_batch_applies() -> None:
    idx = Indexes()
    idx.apply([put(schema.NODES.key("n1"), BAD_NODE, 2), node("n2", 2)], 2)
    assert idx.revision == 2
    assert list(idx.nodes) == ["n2"]
    assert idx.quarantined == {"catalog/nodes/n1": 2}
    [rejected] = idx.take_rejected()
    assert (rejected.key, rejected.revision) == ("catalog/nodes/n1", 2)
    assert "Expected `str`, got `int`" in rejected.reason
    assert idx.take_rejected() == []


def test_a_value_stored_as_text_is_quarantined() -> None:
    idx = Indexes()
    idx.apply([Event(EventType.PUT, KeyValue("kv/text", "not bytes", 2, 2, 1)), node("n2", 2)], 2)  # type: ignore[arg-type]
    assert idx.quarantined == {"kv/text": 2}
    assert list(idx.nodes) == ["n2"]


def test_bad_version_drops_the_older_good_one_and_a_good_one_restores_it() -> None:
    idx = Indexes()
    idx.apply([node("n1", 2)], 2)
    idx.apply([put(schema.NODES.key("n1"), b"\xc1 not msgpack", 3)], 3)
    assert "n1" not in idx.nodes
    assert idx.topics.index(("node", "n1")) == 3
    idx.apply([node("n1", 4)], 4)
    assert idx.nodes["n1"].ModifyIndex == 4
    assert idx.quarantined == {}


def test_bad_service_leaves_its_service_index_behind() -> None:
    idx = Indexes()
    web = NodeService(ID="web-1", Service="web", Port=80)
    idx.apply([node("n1", 2), put(schema.SERVICES.key("n1", "web-1"), schema.encode(web), 2)], 2)
    idx.apply([put(schema.SERVICES.key("n1", "web-1"), msgspec.msgpack.encode({"ID": 1}), 3)], 3)
    assert "web" not in idx.instances
    assert idx.service_index("web") == 3


def test_bad_kv_reads_as_deleted_so_prefix_watchers_see_it() -> None:
    idx = Indexes()
    good = schema.encode(KVEntry(Key="app/a", Value=b"v"))
    idx.apply([put(schema.KVS.key("app/a"), good, 2)], 2)
    idx.apply([put(schema.KVS.key("app/a"), msgspec.msgpack.encode([1, 2]), 5)], 5)
    assert idx.kv_prefix("app/") == []
    assert idx.kv_prefix_index("app/") == 5


@pytest.mark.parametrize(
    "key",
    [
        "catalog/services/nodeonly",
        "catalog/services/n1/",
        "catalog/checks/n1",
        "catalog/nodes/",
        "kv/",
        "system/leader/other",
    ],
)
def test_keys_of_the_wrong_shape_are_quarantined_not_indexed(key: str) -> None:
    idx = Indexes()
    valid = schema.encode(KVEntry(Key="x")) if key.startswith("kv/") else BAD_NODE
    idx.apply([put(key, valid, 2), node("n2", 2)], 2)
    assert idx.quarantined == {key: 2}
    assert list(idx.nodes) == ["n2"]
    assert idx.leader is None
    assert (idx.services, idx.checks, len(idx.kv)) == ({}, {}, 0)
    idx.apply([delete(key, 3)], 3)
    assert idx.quarantined == {}
    assert [r.key for r in idx.take_rejected()] == [key]


def test_leader_key_beside_the_real_one_cannot_replace_it() -> None:
    idx = Indexes()
    me = schema.encode(schema.LEADER.record(Name="s1", Addr="127.0.0.1:8300"))
    other = schema.encode(schema.LEADER.record(Name="rogue", Addr="127.0.0.1:1"))
    idx.apply([put(schema.LEADER_KEY, me, 2), put("system/leader/x", other, 2)], 2)
    assert idx.leader == schema.LEADER.record(Name="s1", Addr="127.0.0.1:8300")
    assert list(idx.quarantined) == ["system/leader/x"]


def test_keys_outside_every_table_are_ignored() -> None:
    idx = Indexes()
    idx.apply([put("elsewhere/x", b"\xc1", 2), put("catalog/other", b"\xc1", 2)], 2)
    assert idx.revision == 2
    assert idx.quarantined == {}
    assert idx.take_rejected() == []


def kv(key: str, revision: int) -> Event:
    return put(schema.KVS.key(key), schema.encode(KVEntry(Key=key, Value=b"v")), revision)


def reap(index: int, revision: int) -> Event:
    return put(schema.GRAVEYARD_KEY, schema.encode(Graveyard(ReapIndex=index)), revision)


def test_reap_drops_tombstones_up_to_its_index_and_keeps_newer_ones() -> None:
    idx = Indexes()
    idx.apply([kv("a/1", 2), kv("a/2", 2), kv("b/1", 2)], 2)
    idx.apply([delete(schema.KVS.key("a/2"), 3)], 3)
    idx.apply([delete(schema.KVS.key("b/1"), 4)], 4)
    idx.apply([reap(3, 5)], 5)
    assert dict(idx.kv_tombstones) == {"b/1": 4}
    assert idx.kv_reaped_index == 3
    idx.apply([reap(2, 6)], 6)
    assert dict(idx.kv_tombstones) == {"b/1": 4}
    assert idx.kv_reaped_index == 3


def test_a_prefix_index_never_goes_backwards_when_its_tombstone_is_reaped() -> None:
    idx = Indexes()
    idx.apply([kv("app/a", 2), kv("app/b", 3)], 3)
    idx.apply([delete(schema.KVS.key("app/b"), 4)], 4)
    idx.apply([kv("other", 5)], 5)
    before = {prefix: idx.kv_prefix_index(prefix) for prefix in ("app/", "app/b", "app/a", "")}
    assert before == {"app/": 4, "app/b": 4, "app/a": 2, "": 5}
    idx.apply([reap(4, 6)], 6)
    assert idx.kv_tombstones == {}
    after = {prefix: idx.kv_prefix_index(prefix) for prefix in before}
    assert all(after[p] >= before[p] for p in before), after
    assert after["app/"] == 4
    assert after["app/b"] == idx.table_index("kvs") == 5


def proxy(sid: str, destination: str) -> NodeService:
    return NodeService(
        ID=sid, Service=f"{sid}-svc", Kind="connect-proxy", Port=21000,
        Proxy=ConnectProxyConfig(DestinationServiceName=destination),
    )  # fmt: skip


def service(node_name: str, svc: NodeService, revision: int) -> Event:
    return put(schema.SERVICES.key(node_name, svc.ID), schema.encode(svc), revision)


def connect_keys(idx: Indexes) -> dict[str, list[tuple[str, str]]]:
    return {name: sorted(found) for name, found in idx.connect.items()}


def test_connect_index_follows_register_redirect_deregister_and_node_removal() -> None:
    idx = Indexes()
    native = NodeService(ID="pay-1", Service="pay", Port=80, Connect=ServiceConnect(Native=True))
    idx.apply(
        [node("n1", 2), node("n2", 2), service("n1", proxy("p1", "pay"), 2), service("n2", native, 2)], 2
    )
    idx.apply([service("n1", NodeService(ID="plain", Service="pay", Port=81), 3)], 3)
    assert connect_keys(idx) == {"pay": [("n1", "p1"), ("n2", "pay-1")]}
    # The very records the catalog holds, not copies.
    assert idx.connect["pay"][("n1", "p1")] is idx.instances["p1-svc"][("n1", "p1")]
    assert idx.service_index("pay", "connect") == 2

    idx.apply([service("n1", proxy("p1", "ledger"), 4)], 4)
    assert connect_keys(idx) == {"pay": [("n2", "pay-1")], "ledger": [("n1", "p1")]}
    assert idx.service_index("pay", "connect") == idx.service_index("ledger", "connect") == 4

    idx.apply([delete(schema.SERVICES.key("n1", "p1"), 5)], 5)
    assert connect_keys(idx) == {"pay": [("n2", "pay-1")]}
    assert idx.service_index("ledger", "connect") == 5

    idx.apply([delete(schema.SERVICES.key("n2", "pay-1"), 6), delete(schema.NODES.key("n2"), 6)], 6)
    assert idx.connect == {}
    assert idx.service_index("pay", "connect") == 6
    assert list(idx.instances) == ["pay"]


def test_a_proxys_check_and_node_touch_its_destinations_connect_topic_only() -> None:
    idx = Indexes()
    idx.apply([node("n1", 2), service("n1", proxy("p1", "pay"), 2), service("n1", proxy("p2", "db"), 2)], 2)
    check = HealthCheck(Node="n1", CheckID="c1", Name="c", ServiceID="p1", ServiceName="p1-svc")
    idx.apply([put(schema.CHECKS.key("n1", "c1"), schema.encode(check), 3)], 3)
    assert (idx.service_index("pay", "connect"), idx.service_index("db", "connect")) == (3, 2)
    idx.apply([node("n1", 4)], 4)
    assert (idx.service_index("pay", "connect"), idx.service_index("db", "connect")) == (4, 4)


async def test_connect_index_is_rebuilt_by_a_snapshot_restore_and_emptied_by_node_deregistration(
    state: State,
) -> None:
    n1 = Node(Node="n1", Address="10.0.0.1")
    await catalog_ops.register(state, n1, [proxy("p1", "pay")])
    data, _ = await snapshot_ops.save(state)
    await catalog_ops.register(state, n1, [proxy("p1", "ledger"), proxy("p2", "pay")])
    assert connect_keys(state.indexes) == {"ledger": [("n1", "p1")], "pay": [("n1", "p2")]}
    await snapshot_ops.restore(state, decode(data))
    assert connect_keys(state.indexes) == {"pay": [("n1", "p1")]}
    assert state.indexes.connect["pay"][("n1", "p1")] is state.indexes.instances["p1-svc"][("n1", "p1")]
    await catalog_ops.deregister(state, "n1")
    assert state.indexes.connect == {}
