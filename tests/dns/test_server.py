"""The UDP and TCP listeners on 127.0.0.1, driven by dnspython and by the real ``dig``."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest
from dnskit import Upstream, catalog, make_resolver, texts

from waypost.dns import DnsServer, Recursor, Resolver
from waypost.dns.backend import Pending
from waypost.dns.static import StaticBackend
from waypost.state.model import Node, NodeService


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    dns_server = DnsServer(make_resolver(catalog()), "127.0.0.1", 0, tcp_idle_timeout=0.5)
    await dns_server.start()
    yield dns_server
    await dns_server.stop()


def big_backend(count: int) -> StaticBackend:
    backend = StaticBackend()
    nodes = [Node(Node=f"node{i}", Address=f"10.3.{i // 250}.{i % 250 + 1}") for i in range(count)]
    backend.load(nodes, {n.Node: [NodeService(ID="big", Service="big", Port=1000)] for n in nodes})
    return backend


async def udp(server: DnsServer, name: str, qtype: str, **kw: object) -> dns.message.Message:
    query = dns.message.make_query(name, qtype, **kw)  # type: ignore[arg-type]
    return await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=2, ignore_trailing=True)


async def tcp(server: DnsServer, name: str, qtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, qtype)
    return await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=2)


async def test_udp_and_tcp_share_a_port(server: DnsServer) -> None:
    assert server.port > 0
    for reply in (await udp(server, "bar.node.consul", "A"), await tcp(server, "bar.node.consul", "A")):
        assert texts(reply.answer) == ["bar.node.consul. 0 IN A 10.0.0.2"]
        assert reply.flags & dns.flags.AA


async def test_a_resolver_given_as_a_function_is_made_by_the_first_query() -> None:
    made: list[Resolver] = []

    def make() -> Resolver:
        made.append(make_resolver(catalog()))
        return made[-1]

    lazy = DnsServer(make, "127.0.0.1", 0, recursor=Recursor([]))
    await lazy.start()
    try:
        assert made == []  # started and listening, and nothing loaded for a query yet
        assert texts((await udp(lazy, "bar.node.consul", "A")).answer) == ["bar.node.consul. 0 IN A 10.0.0.2"]
        assert texts((await tcp(lazy, "bar.node.consul", "A")).answer) == ["bar.node.consul. 0 IN A 10.0.0.2"]
        assert len(made) == 1
    finally:
        await lazy.stop()


async def test_datagrams_before_the_resolver_is_made_wait_for_it() -> None:
    lazy = DnsServer(lambda: make_resolver(catalog()), "127.0.0.1", 0, recursor=Recursor([]))
    await lazy.start()
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            replies.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", lazy.port))
    try:
        for qid in range(20):  # all sent before the first can be answered
            query = dns.message.make_query("bar.node.consul", "A", id=qid)
            transport.sendto(query.to_wire())
        got = [dns.message.from_wire(await asyncio.wait_for(replies.get(), 5)) for _ in range(20)]
        assert sorted(m.id for m in got) == list(range(20))
        assert {tuple(texts(m.answer)) for m in got} == {("bar.node.consul. 0 IN A 10.0.0.2",)}
    finally:
        transport.close()
        await lazy.stop()


async def test_a_taken_port_is_an_error_that_says_so(server: DnsServer) -> None:
    """The agent prints this at start-up; uvloop alone would not say why the bind failed."""
    taken = DnsServer(make_resolver(catalog()), "127.0.0.1", server.port)
    with pytest.raises(OSError, match=f"bind DNS on 127.0.0.1:{server.port}: address already in use"):
        await taken.start()


async def test_tcp_answers_pipelined_queries_in_turn(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    names = ["foo.node.consul", "bar.node.consul", "db.service.consul"]
    wires = [dns.message.make_query(n, "A", id=i).to_wire() for i, n in enumerate(names)]
    writer.write(b"".join(len(w).to_bytes(2, "big") + w for w in wires))
    await writer.drain()
    for i in range(len(names)):
        size = int.from_bytes(await reader.readexactly(2), "big")
        reply = dns.message.from_wire(await reader.readexactly(size))
        assert reply.id == i
        assert reply.answer
    writer.close()


async def test_tcp_idle_connections_are_closed(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    writer.close()


async def test_truncation_over_udp_and_whole_over_tcp() -> None:
    resolver = make_resolver(big_backend(40), enable_truncate=True)
    dns_server = DnsServer(resolver, "127.0.0.1", 0)
    await dns_server.start()
    try:
        small = await udp(dns_server, "big.service.consul", "A")
        assert small.flags & dns.flags.TC
        assert len(small.answer[0]) == 3
        edns = await udp(dns_server, "big.service.consul", "SRV", use_edns=0, payload=1232)
        assert edns.flags & dns.flags.TC
        assert 3 < len(edns.answer[0]) < 40
        whole = await tcp(dns_server, "big.service.consul", "SRV")
        assert not whole.flags & dns.flags.TC
        assert len(whole.answer[0]) == 40
        assert len(whole.additional) == 40
    finally:
        await dns_server.stop()


async def test_forwarding_relays_upstream_and_servfails_without_one() -> None:
    upstream = Upstream()
    await upstream.start()
    resolver = make_resolver(catalog(), recursors=[f"127.0.0.1:{upstream.port}"], recursor_timeout="200ms")
    dns_server = DnsServer(resolver, "127.0.0.1", 0)
    await dns_server.start()
    try:
        for reply in (await udp(dns_server, "example.com", "A"), await tcp(dns_server, "example.com", "A")):
            assert texts(reply.answer) == ["example.com. 60 IN A 93.184.216.34"]
            assert reply.flags & dns.flags.RA
        failed = await udp(dns_server, "silent.test", "A")
        assert failed.rcode() == dns.rcode.SERVFAIL
        assert failed.flags & dns.flags.RA
    finally:
        await dns_server.stop()
        await upstream.stop()


async def test_a_prepared_query_whose_failover_does_not_land_in_time_is_servfail_never_nxdomain() -> None:
    backend = catalog()
    backend.load([], {}, prepared={"later": Pending("later")})
    dns_server = DnsServer(make_resolver(backend, recursor_timeout="200ms"), "127.0.0.1", 0)
    await dns_server.start()
    try:
        for reply in (
            await udp(dns_server, "later.query.consul", "A"),
            await tcp(dns_server, "later.query.consul", "A"),
        ):
            assert reply.rcode() == dns.rcode.SERVFAIL
    finally:
        await dns_server.stop()


async def test_refused_without_recursors(server: DnsServer) -> None:
    assert (await udp(server, "example.com", "A")).rcode() == dns.rcode.REFUSED


DIG_CASES = [
    ("web.service.consul", "A", ["10.0.0.1", "10.0.0.2"]),
    ("primary.web.service.dc1.consul", "A", ["10.0.0.1"]),
    ("_web._primary.service.consul", "SRV", ["1 5 80 foo.node.dc1.consul."]),
    ("_db._tcp.consul", "SRV", ["1 1 5432 0a010001.addr.dc1.consul."]),
    ("foo.node.consul", "A", ["10.0.0.1"]),
    ("foo.node.dc1.consul", "TXT", ['"hello world"', '"rack=a"']),
    ("six.node.consul", "AAAA", ["2001:db8::6"]),
    ("0a010001.addr.dc1.consul", "A", ["10.1.0.1"]),
    ("pq.query.consul", "A", ["10.0.0.1"]),
    ("1.0.0.10.in-addr.arpa", "PTR", ["foo.node.dc1.consul."]),
    ("consul", "NS", ["server.node.dc1.consul."]),
]


@pytest.mark.skipif(shutil.which("dig") is None, reason="needs dig (dnsutils)")
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
@pytest.mark.parametrize(("name", "qtype", "want"), DIG_CASES)
async def test_dig(server: DnsServer, transport: str, name: str, qtype: str, want: list[str]) -> None:
    assert await dig(server, transport, name, qtype, "+short") == want


@pytest.mark.skipif(shutil.which("dig") is None, reason="needs dig (dnsutils)")
async def test_dig_sees_nxdomain_with_soa(server: DnsServer) -> None:
    lines = await dig(server, "+notcp", "nope.service.consul", "A", "+noall", "+comments", "+authority")
    assert any("status: NXDOMAIN" in line for line in lines)
    assert any("flags: qr aa rd" in line for line in lines)
    assert any("IN\tSOA\tns.consul. hostmaster.consul." in line for line in lines)


async def dig(server: DnsServer, *args: str) -> list[str]:
    proc = await asyncio.create_subprocess_exec(
        "dig",
        "@127.0.0.1",
        "-p",
        str(server.port),
        "+time=2",
        "+tries=1",
        *args,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return sorted(line for line in out.decode().splitlines() if line)
