"""Names in another datacenter: relayed to a DNS server of that datacenter over real
sockets, answered as it answers them; an unknown datacenter stays NXDOMAIN."""

from __future__ import annotations

from collections.abc import AsyncIterator

import dns.asyncquery
import dns.message
import dns.rcode
import pytest
from dnskit import catalog, make_resolver, texts

from waypost.dns import DnsConfig, DnsServer, Forward, Resolver
from waypost.dns.static import StaticBackend, StaticRemote
from waypost.state.model import Node, NodeService
from waypost.testing import free_port


def far_backend() -> StaticBackend:
    backend = StaticBackend("dc2")
    backend.load(
        [Node(Node="far1", Address="10.9.0.1", Datacenter="dc2")],
        {"far1": [NodeService(ID="web", Service="web", Port=8080)]},
    )
    return backend


@pytest.fixture
async def far() -> AsyncIterator[DnsServer]:
    server = DnsServer(Resolver(far_backend(), DnsConfig()), "127.0.0.1", 0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def near(far: DnsServer) -> AsyncIterator[DnsServer]:
    remote = StaticRemote({"dc2": [("127.0.0.1", far.port)], "dc3": [("127.0.0.1", free_port())]}, 0.5)
    server = DnsServer(Resolver(catalog(), DnsConfig(), remote=remote), "127.0.0.1", 0)
    await server.start()
    yield server
    await server.stop()


async def ask(server: DnsServer, name: str, qtype: str, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, qtype)
    send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await send(query, "127.0.0.1", port=server.port, timeout=3)


@pytest.mark.parametrize("tcp", [False, True])
async def test_a_service_in_another_datacenter_is_answered_by_that_datacenter(
    near: DnsServer, tcp: bool
) -> None:
    reply = await ask(near, "web.service.dc2.consul", "SRV", tcp)
    assert reply.rcode() == dns.rcode.NOERROR
    assert texts(reply.answer) == ["web.service.dc2.consul. 0 IN SRV 1 1 8080 far1.node.dc2.consul."]


async def test_a_node_in_another_datacenter_is_answered_by_that_datacenter(near: DnsServer) -> None:
    reply = await ask(near, "far1.node.dc2.consul", "A")
    assert texts(reply.answer) == ["far1.node.dc2.consul. 0 IN A 10.9.0.1"]
    missing = await ask(near, "nobody.node.dc2.consul", "A")
    assert missing.rcode() == dns.rcode.NXDOMAIN


async def test_an_unknown_datacenter_is_nxdomain_and_an_unreachable_one_servfail(near: DnsServer) -> None:
    assert (await ask(near, "web.service.dc9.consul", "A")).rcode() == dns.rcode.NXDOMAIN
    assert (await ask(near, "web.service.dc3.consul", "A")).rcode() == dns.rcode.SERVFAIL
    assert (await ask(near, "web.service.dc1.consul", "SRV")).rcode() == dns.rcode.NOERROR


def test_the_resolver_hands_a_remote_name_over_uncached() -> None:
    resolver = make_resolver(catalog())
    query = dns.message.make_query("web.service.dc2.consul", "A").to_wire()
    assert isinstance(resolver.handle(query), bytes)  # no remote: NXDOMAIN
    remote = StaticRemote({"dc2": [("127.0.0.1", 1)]})
    resolver = Resolver(catalog(), DnsConfig(), remote=remote)
    for _ in range(2):
        forward = resolver.handle(query)
        assert isinstance(forward, Forward)
        assert forward.datacenter == "dc2"
        assert forward.query == query
