from __future__ import annotations

import msgspec

from waypost.state import catalog_ops, schema
from waypost.state.model import AddressPort, HealthCheck, Node, NodeService
from waypost.state.sharing import Pool, Sharing
from waypost.state.state import State


def instance(node: str, tags: list[str], meta: dict[str, str]) -> tuple[Node, NodeService, HealthCheck]:
    svc = NodeService(ID="web-1", Service="web", Tags=tags, Meta=meta, Port=80)
    check = HealthCheck(Node=node, CheckID="web-alive", Name="alive", Status="passing", ServiceID="web-1")
    return Node(Node=node, Address="10.0.0.1"), svc, check


async def test_instances_share_equal_values_and_read_back_unchanged(state: State) -> None:
    for node in ("n1", "n2"):
        node_rec, svc, check = instance(node, ["v1", "blue"], {"team": "a"})
        await catalog_ops.register(state, node_rec, [svc], [check])
    idx = state.indexes
    a, b = (idx.services[n]["web-1"] for n in ("n1", "n2"))
    ca, cb = (idx.checks[n]["web-alive"] for n in ("n1", "n2"))
    assert a.Tags is b.Tags is ca.ServiceTags is cb.ServiceTags
    assert a.Meta is b.Meta
    assert a.Weights is b.Weights
    assert a.Service is b.Service is ca.ServiceName
    assert ca.Status is cb.Status
    assert a.TaggedAddresses is b.TaggedAddresses is ca.Definition
    node_key = next(k for k in idx.services if k == "n1")
    assert node_key is ca.Node is idx.nodes["n1"].Node
    # Sharing changes identity only: what is read is what was written.
    assert a.Tags == ["v1", "blue"]
    assert a.Meta == {"team": "a"}
    assert ca.ServiceTags == ["v1", "blue"]


async def test_a_changed_registration_gets_its_own_values(state: State) -> None:
    for node, tags in (("n1", ["v1"]), ("n2", ["v1"])):
        node_rec, svc, check = instance(node, tags, {})
        await catalog_ops.register(state, node_rec, [svc], [check])
    node_rec, svc, check = instance("n2", ["v2"], {"team": "b"})
    await catalog_ops.register(state, node_rec, [svc], [check])
    one, two = (state.indexes.services[n]["web-1"] for n in ("n1", "n2"))
    assert one.Tags == ["v1"]
    assert one.Meta == {}
    assert two.Tags == ["v2"]
    assert two.Meta == {"team": "b"}


def test_maps_with_values_other_than_strings_are_shared_only_when_empty() -> None:
    sharing = Sharing()
    decode = schema.SERVICES.decode
    tagged = {"lan": AddressPort("10.0.0.1", 80)}
    records = [
        sharing.record(decode(schema.encode(NodeService(ID="a", Service="a", TaggedAddresses=tagged)), 1, 1))
        for _ in range(2)
    ]
    assert records[0].TaggedAddresses == records[1].TaggedAddresses
    assert records[0].TaggedAddresses is not records[1].TaggedAddresses


def test_only_node_scoped_key_parts_are_interned() -> None:
    sharing = Sharing()
    node = "".join(["node", "7"])
    [part, _] = sharing.parts("services", [node, "web"])
    assert part is sharing.parts("checks", ["".join(["node", "7"]), "c"])[0]
    key = "".join(["kv", "/x"])
    assert sharing.parts("kvs", [key])[0] is key


def test_pool_drops_entries_nothing_else_holds_once_it_has_doubled() -> None:
    pool: Pool[list[str]] = Pool()
    held = [pool.get_or_add(("kept", i), list) for i in range(10)]
    for i in range(2000):
        pool.get_or_add(("churn", i), list)
    assert all(("kept", i) in pool for i in range(10))
    assert len(pool) < 2000
    assert pool.get_or_add(("kept", 3), list) is held[3]


def test_decoded_records_stay_valid_structs() -> None:
    sharing = Sharing()
    rec = sharing.record(
        schema.CHECKS.decode(schema.encode(HealthCheck(Node="n", CheckID="c", Name="c")), 2, 3)
    )
    assert msgspec.json.decode(msgspec.json.encode(rec), type=HealthCheck) == rec
    assert (rec.CreateIndex, rec.ModifyIndex) == (2, 3)
