"""Execution over a real in-memory state: filters, near sorting, limit, and failover through
a plain fake of the RemoteDatacenters seam (the real one is exercised in tests/e2e)."""

from __future__ import annotations

import random
from typing import Any

import msgspec

from fake_datacenters import FakeDatacenters
from waypost.query.definition import decode_definition
from waypost.query.executor import Source, execute, failover_datacenters, run_local
from waypost.state import catalog_ops, schema
from waypost.state.model import (
    ConnectProxyConfig,
    Coordinate,
    HealthCheck,
    Node,
    NodeService,
    PreparedQuery,
    ServiceConnect,
)
from waypost.state.state import State
from waypost.store.base import Put


def _query(**service: Any) -> PreparedQuery:
    return decode_definition({"Name": "q", "Service": {"Service": "web", **service}})


async def _instance(
    state: State,
    node: str,
    *,
    tags: tuple[str, ...] = (),
    status: str = "passing",
    meta: dict[str, str] | None = None,
) -> None:
    svc = NodeService(ID="web", Service="web", Tags=list(tags), Meta=dict(meta or {}))
    checks = [
        HealthCheck(Node=node, CheckID="svc", Name="svc", Status=status, ServiceID="web"),
        HealthCheck(Node=node, CheckID="flaky", Name="flaky", Status="passing"),
    ]
    await catalog_ops.register(
        state,
        Node(Node=node, Address=f"10.0.{len(node)}.{ord(node[-1])}", Meta={"rack": node}),
        [svc],
        checks,
    )


def _nodes(answer: Any) -> list[str]:
    return [i.node.Node for i in answer.instances]


async def test_health_filters_with_only_passing_and_ignored_checks(state: State) -> None:
    await _instance(state, "ok")
    await _instance(state, "warn", status="warning")
    await _instance(state, "down", status="critical")
    idx = state.indexes
    assert sorted(_nodes(run_local(idx, _query(), "dc1"))) == ["ok", "warn"]
    assert _nodes(run_local(idx, _query(OnlyPassing=True), "dc1")) == ["ok"]
    assert sorted(_nodes(run_local(idx, _query(IgnoreCheckIDs=["svc"]), "dc1"))) == ["down", "ok", "warn"]


async def test_tags_with_exclusions_and_meta_filters(state: State) -> None:
    await _instance(state, "a", tags=("Primary", "v1"), meta={"env": "prod"})
    await _instance(state, "b", tags=("primary", "experimental"), meta={"env": "prod"})
    await _instance(state, "c", tags=("v1",), meta={"env": "dev"})
    idx = state.indexes
    assert _nodes(run_local(idx, _query(Tags=["primary", "!experimental"]), "dc1")) == ["a"]
    assert sorted(_nodes(run_local(idx, _query(ServiceMeta={"env": "prod"}), "dc1"))) == ["a", "b"]
    assert _nodes(run_local(idx, _query(NodeMeta={"rack": "c"}), "dc1")) == ["c"]


async def test_connect_selects_the_services_proxies_and_native_instances_with_the_same_filters(
    state: State,
) -> None:
    await _instance(state, "plain")
    sick = HealthCheck(Node="mesh", CheckID="p2", Name="p2", Status="critical", ServiceID="p2")
    proxies = [
        NodeService(ID=f"p{i}", Service="web-proxy", Kind="connect-proxy", Port=21000 + i, Tags=[f"t{i}"],
                    Proxy=ConnectProxyConfig(DestinationServiceName=destination))
        for i, destination in ((1, "web"), (2, "web"), (3, "db"))
    ]  # fmt: skip
    native = NodeService(ID="web-n", Service="web", Port=80, Connect=ServiceConnect(Native=True))
    await catalog_ops.register(state, Node(Node="mesh", Address="10.9.0.1"), [*proxies, native], [sick])
    idx = state.indexes

    def ids(query: PreparedQuery) -> list[str]:
        return sorted(i.service.ID for i in run_local(idx, query, "dc1").instances)

    assert ids(_query(Connect=True)) == ["p1", "web-n"]
    assert ids(_query(Connect=True, OnlyPassing=True, Tags=["t1"])) == ["p1"]
    assert ids(_query(Connect=True, IgnoreCheckIDs=["p2"])) == ["p1", "p2", "web-n"]
    answer = await execute(idx, _query(), FakeDatacenters([], {}), connect=True)
    assert (answer.service, sorted(i.service.ID for i in answer.instances)) == ("web", ["p1", "web-n"])


async def test_connect_acl_filter_reads_each_instance_s_own_service_name(state: State) -> None:
    """Consul filters a Connect execution as any other (CheckServiceNode.CanRead): node read
    and read on the instance's own service, the proxy's name for a proxy; read on the
    destination is not asked for, unlike /v1/health/connect."""
    proxy = NodeService(ID="p1", Service="web-proxy", Kind="connect-proxy", Port=21000,
                        Proxy=ConnectProxyConfig(DestinationServiceName="web"))  # fmt: skip
    native = NodeService(ID="web-n", Service="web", Port=80, Connect=ServiceConnect(Native=True))
    await catalog_ops.register(state, Node(Node="mesh", Address="10.9.0.1"), [proxy, native], [])
    asked: set[tuple[str, str]] = set()

    def proxies_only(node: str, service: str) -> bool:
        asked.add((node, service))
        return service == "web-proxy"

    answer = run_local(state.indexes, _query(Connect=True), "dc1", keep=proxies_only)
    assert [i.service.ID for i in answer.instances] == ["p1"]
    assert answer.filtered
    assert asked == {("mesh", "web-proxy"), ("mesh", "web")}


async def test_acl_filter_reports_what_it_hid(state: State) -> None:
    await _instance(state, "a")
    await _instance(state, "b")
    answer = run_local(state.indexes, _query(), "dc1", keep=lambda node, service: node == "a")
    assert _nodes(answer) == ["a"]
    assert answer.filtered


async def test_near_sorts_by_rtt_and_puts_the_node_first_then_limit(state: State) -> None:
    for name, x in (("far", 0.5), ("mid", 0.1), ("near", 0.01), ("me", 0.0)):
        await _instance(state, name)
        coord = Coordinate(Node=name, Coord={"Vec": [x] + [0.0] * 7, "Error": 1.5, "Height": 1e-5})
        await state.write(lambda c=coord: ([], [Put(schema.COORDINATES.key(c.Node), schema.encode(c))]))
    idx = state.indexes
    for seed in range(5):
        answer = run_local(idx, _query(), "dc1", source=Source(near="me"), rng=random.Random(seed))
        assert _nodes(answer) == ["me", "near", "mid", "far"]
    agent = run_local(idx, _query(Near="_agent"), "dc1", source=Source(agent_node="far"), limit=2)
    assert _nodes(agent) == ["far", "mid"]
    by_ip = run_local(idx, _query(), "dc1", source=Source(near="_ip", ip="10.0.3.100"), limit=1)
    assert _nodes(by_ip) == ["mid"]


async def test_without_near_the_order_is_the_injected_shuffle(state: State) -> None:
    for name in ("a", "b", "c", "d", "e"):
        await _instance(state, name)
    orders = {
        tuple(_nodes(run_local(state.indexes, _query(), "dc1", rng=random.Random(s)))) for s in range(8)
    }
    assert len(orders) > 1


def test_failover_order_is_nearest_n_then_the_known_listed_ones_once() -> None:
    query = _query(Failover={"NearestN": 1, "Datacenters": ["dc9", "dc3", "dc2", "nope"]})
    assert failover_datacenters(query, ["dc2", "dc3", "dc9"]) == ["dc2", "dc9", "dc3"]
    targets = _query(Failover={"Targets": [{"Datacenter": "dc3"}, {"Datacenter": "zz"}]})
    assert failover_datacenters(targets, ["dc2", "dc3"]) == ["dc3"]


async def test_local_instances_win_and_failover_counts_every_datacenter_tried(state: State) -> None:
    query = _query(Failover={"NearestN": 2, "Datacenters": ["unknown", "dc4"]})
    remote = FakeDatacenters(["dc2", "dc3", "dc4"], {"dc2": None, "dc3": [], "dc4": ["r1", "r2"]})
    answer = await execute(state.indexes, query, remote, limit=5, token="tok")
    assert [c[0] for c in remote.calls] == ["dc2", "dc3", "dc4"]
    assert (answer.datacenter, answer.failovers) == ("dc4", 3)
    assert [n["Node"]["Node"] for n in answer.remote_nodes or []] == ["r1", "r2"]
    _dc, definition, params, token = remote.calls[0]
    assert definition == msgspec.to_builtins(query)
    assert params == {"limit": "5"}
    assert token == "tok"

    await _instance(state, "local")
    remote.calls.clear()
    again = await execute(state.indexes, query, remote)
    assert _nodes(again) == ["local"]
    assert (again.datacenter, again.failovers) == ("dc1", 0)
    assert remote.calls == []


async def test_no_failover_datacenter_answers_with_the_local_empty_result(state: State) -> None:
    remote = FakeDatacenters(["dc2"], {"dc2": None})
    answer = await execute(state.indexes, _query(Failover={"NearestN": 1}), remote)
    assert (answer.datacenter, answer.failovers, answer.empty) == ("dc1", 1, True)
