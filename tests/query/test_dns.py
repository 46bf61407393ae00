"""Prepared queries over DNS: local answers at once; a failover's first lookup is pending
until one shared fetch lands, which is served from then on (refreshed in the background),
the local datacenter again as soon as it recovers; ``Near = "_ip"`` sorts per client."""

from __future__ import annotations

import asyncio

from fake_datacenters import FakeDatacenters
from waypost.dns.backend import Pending, PreparedResult
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


def _nodes(result: PreparedResult | Pending | None) -> list[str]:
    assert isinstance(result, PreparedResult), result
    return [i.node.name for i in result.instances]


async def test_local_answers_carry_the_query_ttl_and_unknown_names_are_none(state: State) -> None:
    await _web(state, "passing")
    body = {"Name": "web-q", "Service": {"Service": "web"}, "DNS": {"TTL": "7s"}}
    await create_query(state, decode_definition(body))
    queries = DnsQueries("dc1")
    result = queries.answer(state.indexes, "WEB-Q", None)
    assert isinstance(result, PreparedResult)
    assert (result.service, result.datacenter, result.ttl, result.near) == ("web", "dc1", 7.0, False)
    assert [i.address for i in result.instances] == ["10.0.0.1"]
    assert queries.answer(state.indexes, "nope", None) is None
    assert _nodes(queries.answer(state.indexes, "web-q", lambda node, service: False)) == []


async def test_the_first_failover_lookup_is_pending_until_one_shared_fetch_lands(state: State) -> None:
    await _web(state, "critical")
    body = {"Name": "web-fo", "Service": {"Service": "web", "Failover": {"NearestN": 1}}}
    await create_query(state, decode_definition(body))
    remote = FakeDatacenters(["dc2"], {"dc2": ["far"]})
    queries = DnsQueries("dc1", remote, refresh=0.05)
    before = queries.generation
    assert queries.answer(state.indexes, "web-fo", None) == Pending("web-fo")
    await asyncio.gather(*(queries.fail_over(state.indexes, "WEB-FO", None) for _ in range(3)))
    assert len(remote.calls) == 1
    assert queries.generation > before
    failed_over = queries.answer(state.indexes, "web-fo", None)
    assert isinstance(failed_over, PreparedResult)
    assert (failed_over.datacenter, _nodes(failed_over)) == ("dc2", ["far"])
    await asyncio.sleep(0.1)  # past the refresh: the next lookup serves it and fetches afresh
    assert _nodes(queries.answer(state.indexes, "web-fo", None)) == ["far"]
    await asyncio.wait_for(queries.fail_over(state.indexes, "web-fo", None), 5)
    assert len(remote.calls) == 2
    await _web(state, "passing")
    assert _nodes(queries.answer(state.indexes, "web-fo", None)) == ["n1"]
    await _web(state, "critical")
    assert queries.answer(state.indexes, "web-fo", None) == Pending("web-fo")


async def test_a_failover_that_fails_stays_pending_and_an_unknown_name_lands_at_once(state: State) -> None:
    body = {"Name": "gone-q", "Service": {"Service": "gone", "Failover": {"NearestN": 1}}}
    await create_query(state, decode_definition(body))
    queries = DnsQueries("dc1", FakeDatacenters(["dc2"], {"dc2": None}))
    await queries.fail_over(state.indexes, "gone-q", None)
    unreachable = queries.answer(state.indexes, "gone-q", None)
    assert isinstance(unreachable, PreparedResult)
    assert unreachable.instances == []  # nothing anywhere: NXDOMAIN, as Consul's empty failover
    await asyncio.wait_for(queries.fail_over(state.indexes, "nope", None), 5)


async def test_near_ip_sorts_from_the_dns_client(state: State) -> None:
    for n in (1, 2, 3):
        svc = NodeService(ID="db", Service="db", Port=5432)
        await catalog_ops.register(state, Node(Node=f"n{n}", Address=f"10.0.0.{n}"), [svc])
    await create_query(
        state, decode_definition({"Name": "db-ip", "Service": {"Service": "db", "Near": "_ip"}})
    )
    queries = DnsQueries("dc1")
    for n in (1, 2, 3, 2):
        result = queries.answer(state.indexes, "db-ip", None, f"10.0.0.{n}")
        assert isinstance(result, PreparedResult)
        assert (_nodes(result)[0], result.near) == (f"n{n}", True)
    plain = queries.answer(state.indexes, "db-ip", None, "192.0.2.1")
    assert isinstance(plain, PreparedResult)
    assert sorted(_nodes(plain)) == ["n1", "n2", "n3"]


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
        assert isinstance(result, PreparedResult)
        assert (result.instances[0].node.name, result.near) == ("n2", True)

    body = {"Name": "gone-q", "Service": {"Service": "gone", "Failover": {"NearestN": 1}}}
    await create_query(state, decode_definition(body))
    remote = FakeDatacenters(["dc2"], {"dc2": ["far"]})
    failing = DnsQueries("dc1", remote, token=lambda: "dns-secret", refresh=0.05)
    await failing.fail_over(state.indexes, "gone-q", None)
    assert _nodes(failing.answer(state.indexes, "gone-q", None)) == ["far"]
    assert remote.calls[0][3] == "dns-secret"
