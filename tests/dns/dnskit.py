"""Test kit for the DNS package: one small catalog and CoreDNS-style cases.

A :class:`Case` names a question and the expected rcode and sections, records written
as zone-file text. Sections are compared as multisets because service answers are
shuffled; the SOA serial is pinned by a fixed clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from waypost.dns import DnsConfig, PreparedResult, Resolver
from waypost.dns.static import StaticBackend
from waypost.state.model import AddressPort, HealthCheck, Node, NodeService, Weights

NOW = 1_700_000_000.0
SOA = f"consul. 0 IN SOA ns.consul. hostmaster.consul. {int(NOW)} 3600 600 86400 0"


@dataclass(frozen=True)
class Case:
    qname: str
    qtype: str
    rcode: str = "NOERROR"
    answer: tuple[str, ...] = ()
    ns: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


def catalog() -> StaticBackend:
    nodes = [
        Node(Node="foo", Address="10.0.0.1", Meta={"rack": "a", "rfc1035-note": "hello world"}),
        Node(Node="bar", Address="10.0.0.2"),
        Node(Node="baz", Address="10.0.0.3"),
        Node(Node="six", Address="2001:db8::6"),
        Node(Node="dual", Address="10.0.0.5", TaggedAddresses={"lan_ipv6": "2001:db8::5"}),
        Node(Node="server", Address="10.0.0.9"),
        Node(Node="ext", Address="ext.example.com"),
    ]
    services = {
        "foo": [
            NodeService(ID="web", Service="web", Port=80, Tags=["primary", "v1"], Weights=Weights(5, 1)),
            NodeService(ID="db", Service="db", Port=5432, Address="10.1.0.1"),
        ],
        "bar": [
            NodeService(ID="web", Service="web", Port=81, Tags=["secondary"], Weights=Weights(5, 2)),
            NodeService(ID="down", Service="down", Port=1),
        ],
        "baz": [NodeService(ID="web", Service="web", Port=82)],
        "six": [NodeService(ID="api", Service="api", Port=9000)],
        "dual": [
            NodeService(
                ID="dual",
                Service="dual",
                Port=7,
                TaggedAddresses={"lan_ipv4": AddressPort("10.2.0.5", 7)},
            )
        ],
        "server": [NodeService(ID="consul", Service="consul", Port=8300)],
        "ext": [NodeService(ID="external", Service="external", Port=443)],
    }
    checks = [
        HealthCheck(Node="bar", CheckID="web-check", Name="web", Status="warning", ServiceID="web"),
        HealthCheck(Node="bar", CheckID="down-check", Name="down", Status="critical", ServiceID="down"),
        HealthCheck(Node="baz", CheckID="serfHealth", Name="serf", Status="critical"),
    ]
    backend = StaticBackend("dc1")
    backend.load(nodes, services, checks)
    web = backend.service_instances("web", None)
    prepared = {"pq": PreparedResult("web", "dc1", [i for i in web if i.node.name == "foo"], ttl=30)}
    virtual_ips = {"web": "127.240.0.1", "API": "fd00:ec2::5"}
    backend.load(nodes, services, checks, prepared, virtual_ips)
    return backend


def make_resolver(backend: StaticBackend, **config: object) -> Resolver:
    return Resolver(backend, DnsConfig.from_mapping(config), rng=random.Random(7), clock=lambda: NOW)


def ask(
    resolver: Resolver, qname: str, qtype: str, *, tcp: bool = False, payload: int | None = None
) -> dns.message.Message:
    query = dns.message.make_query(qname, qtype, use_edns=payload is not None, payload=payload or 1232)
    reply = resolver.handle(query.to_wire(), tcp)
    assert isinstance(reply, bytes), reply
    return dns.message.from_wire(reply)


def texts(rrsets: Iterable[dns.rrset.RRset]) -> list[str]:
    return sorted(line for rrset in rrsets for line in rrset.to_text().splitlines())


def check(resolver: Resolver, case: Case) -> None:
    reply = ask(resolver, case.qname, case.qtype, payload=4096)
    assert dns.rcode.to_text(reply.rcode()) == case.rcode, reply
    assert texts(reply.answer) == sorted(case.answer), reply
    assert texts(reply.authority) == sorted(case.ns), reply
    assert texts(reply.additional) == sorted(case.extra), reply


class Upstream:
    """A tiny authoritative server standing in for a recursor, on 127.0.0.1 UDP and TCP.

    ``example.com`` has an A record, ``fail.test`` answers SERVFAIL, ``silent.test`` is
    never answered, everything else is NXDOMAIN.
    """

    def __init__(self, address: str = "93.184.216.34") -> None:
        self.address = address
        self.port = 0
        self.queries: list[str] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def reply(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        name = query.question[0].name.to_text().lower()
        self.queries.append(name)
        if name == "silent.test.":
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if name == "example.com.":
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", self.address))
        elif name == "fail.test.":
            response.set_rcode(dns.rcode.SERVFAIL)
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
                out = upstream.reply(data)
                if out is not None:
                    self.transport.sendto(out, addr)  # type: ignore[attr-defined]

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                size = int.from_bytes(await reader.readexactly(2), "big")
                out = upstream.reply(await reader.readexactly(size))
                if out is not None:
                    writer.write(len(out).to_bytes(2, "big") + out)
                    await writer.drain()
                    await reader.read()
            finally:
                writer.close()

        for _ in range(16):
            udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0))
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(tcp, "127.0.0.1", port)
            except OSError:
                udp.close()
                continue
            self._udp, self.port = udp, port
            return
        raise OSError("no port free for both UDP and TCP")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
