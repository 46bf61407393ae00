"""Prepared queries over DNS: local answers at once, failed-over ones fetched in the
background and served from then on, the local datacenter again as soon as it recovers."""

from __future__ import annotations

import asyncio

from fake_datacenters import FakeDatacenters
from waypost.query.definition import decode_definition
from waypost.query.dns import DnsQueries
from waypost.query.ops import create_query
from waypost.state import catalog_ops
from waypost.state.model import HealthCheck, Node, NodeService
from waypost.state.state import State


async def _web(state: State, status: str) -> None:
    svc = NodeService(ID="web", Service="web", Address="10.0.0.1", Port=80)
    check = HealthCheck(Node="n1", CheckID="c", Name="c", Status=status, ServiceID="web")
    await catalog_ops.register(state, Node(Node="n1", Address="10.0.0.1"), [svc], [check])


async def _settled(queries: DnsQueries, state: State, name: str, want: list[str]) -> list[str]:
    """What DNS answers once the background fetch for ``name`` has landed (bounded)."""
    found: list[str] = []
    for _ in range(50):
        result = queries.answer(state.indexes, name, None)
        found = [i.node.name for i in result.instances] if result is not None else []
        if found == want:
            break
        await asyncio.sleep(0.02)
    return found


async def test_local_answers_carry_the_query_ttl_and_unknown_names_are_none(state: State) -> None:
    await _web(state, "passing")
    body = {"Name": "web-q", "Service": {"Service": "web"}, "DNS": {"TTL": "7s"}}
    await create_query(state, decode_definition(body))
    queries = DnsQueries("dc1")
    result = queries.answer(state.indexes, "WEB-Q", None)
    assert result is not None
    assert (result.service, result.datacenter, result.ttl) == ("web", "dc1", 7.0)
    assert [i.address for i in result.instances] == ["10.0.0.1"]
    assert queries.answer(state.indexes, "nope", None) is None
    assert queries.answer(state.indexes, "web-q", lambda node, service: False).instances == []


async def test_failover_then_back_to_the_local_datacenter(state: State) -> None:
    await _web(state, "critical")
    body = {"Name": "web-fo", "Service": {"Service": "web", "Failover": {"NearestN": 1}}}
    await create_query(state, decode_definition(body))
    remote = FakeDatacenters(["dc2"], {"dc2": ["far"]})
    queries = DnsQueries("dc1", remote, refresh=0.05)
    before = queries.generation
    first = queries.answer(state.indexes, "web-fo", None)
    assert first is not None
    assert first.instances == []  # the first lookup cannot wait for the other datacenter
    assert await _settled(queries, state, "web-fo", ["far"]) == ["far"]
    assert queries.generation > before
    failed_over = queries.answer(state.indexes, "web-fo", None)
    assert failed_over is not None
    assert failed_over.datacenter == "dc2"
    await _web(state, "passing")
    assert await _settled(queries, state, "web-fo", ["n1"]) == ["n1"]


async def test_near_agent_sorts_from_this_agent_and_failover_carries_the_dns_token(state: State) -> None:
    for node in ("n1", "n2", "n3"):
        svc = NodeService(ID="db", Service="db", Port=5432)
        await catalog_ops.register(state, Node(Node=node, Address="10.0.0.9"), [svc])
    await create_query(
        state, decode_definition({"Name": "db-q", "Service": {"Service": "db", "Near": "_agent"}})
    )
    queries = DnsQueries("dc1", agent_node="n2")
    for _ in range(5):
        result = queries.answer(state.indexes, "db-q", None)
        assert result is not None
        assert result.instances[0].node.name == "n2"

    body = {"Name": "gone-q", "Service": {"Service": "gone", "Failover": {"NearestN": 1}}}
    await create_query(state, decode_definition(body))
    remote = FakeDatacenters(["dc2"], {"dc2": ["far"]})
    failing = DnsQueries("dc1", remote, token=lambda: "dns-secret", refresh=0.05)
    assert await _settled(failing, state, "gone-q", ["far"]) == ["far"]
    assert remote.calls[0][3] == "dns-secret"
