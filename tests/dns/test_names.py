"""Question names to lookups, as tables of (labels, qtype) -> lookup."""

from __future__ import annotations

import ipaddress

import pytest

from waypost.dns.names import (
    AddrName,
    Lookup,
    NodeName,
    PreparedName,
    ReverseName,
    ServiceName,
    VirtualName,
    Zone,
    classify,
    lookup_for,
)

A, SRV = 1, 33


def parse(qname: str, qtype: int = A, alt: str = "") -> Lookup | None:
    labels = tuple(qname.rstrip(".").split("."))
    zone = classify(labels, "consul.", alt)
    assert zone.domain, qname
    return lookup_for(zone, qtype, "dc1")


@pytest.mark.parametrize(
    ("qname", "qtype", "want"),
    [
        ("web.service.consul", A, ServiceName("web", None, "dc1")),
        ("web.service.dc2.consul", A, ServiceName("web", None, "dc2")),
        ("web.service.dc2.dc.consul", A, ServiceName("web", None, "dc2")),
        ("primary.web.service.consul", A, ServiceName("web", "primary", "dc1")),
        ("a.b.web.service.consul", A, ServiceName("web", "a.b", "dc1")),
        ("_web._tcp.service.consul", SRV, ServiceName("web", None, "dc1")),
        ("_web._primary.service.consul", SRV, ServiceName("web", "primary", "dc1")),
        ("_web._udp.service.consul", SRV, ServiceName("web", "udp", "dc1")),
        ("_web._tcp.consul", SRV, ServiceName("web", None, "dc1")),
        ("_web._tcp.dc2.consul", SRV, ServiceName("web", None, "dc2")),
        ("_web._tcp.consul", A, None),
        ("foo.node.consul", A, NodeName("foo", "dc1")),
        ("foo.bar.node.dc1.consul", A, NodeName("foo.bar", "dc1")),
        ("c000020a.addr.dc1.consul", A, AddrName(ipaddress.ip_address("192.0.2.10"))),
        (
            "20010db8000000000000000000000001.addr.dc1.consul",
            A,
            AddrName(ipaddress.ip_address("2001:db8::1")),
        ),
        ("c000020.addr.dc1.consul", A, None),
        ("zz00020a.addr.dc1.consul", A, None),
        ("a.c000020a.addr.consul", A, None),
        ("pq.query.consul", A, PreparedName("pq", "dc1")),
        ("pq.query.dc2.consul", A, PreparedName("pq", "dc2")),
        ("_pq._tcp.query.consul", SRV, PreparedName("pq", "dc1")),
        ("pq.query.a.b.consul", A, None),
        ("web.service.a.b.c.consul", A, None),
        ("web.service.dc2.peer.consul", A, None),
        ("service.consul", A, None),
        ("consul", A, None),
        ("web.connect.consul", A, ServiceName("web", None, "dc1", connect=True)),
        ("v1.web.connect.dc2.consul", A, ServiceName("web", None, "dc2", connect=True)),
        ("web.connect.a.b.c.consul", A, None),
        ("web.virtual.consul", A, VirtualName("web", "dc1")),
        ("web.virtual.dc2.consul", A, VirtualName("web", "dc2")),
        ("web.virtual.dc2.dc.consul", A, VirtualName("web", "dc2")),
        ("v2.web.virtual.consul", A, VirtualName("web", "dc1")),
        ("virtual.consul", A, None),
        ("web.virtual.a.b.c.consul", A, None),
        ("whatever.consul", A, None),
    ],
)
def test_lookup(qname: str, qtype: int, want: Lookup | None) -> None:
    assert parse(qname, qtype) == want


@pytest.mark.parametrize(
    ("qname", "want"),
    [
        ("10.2.0.192.in-addr.arpa", ipaddress.ip_address("192.0.2.10")),
        (
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            ipaddress.ip_address("2001:db8::1"),
        ),
        ("2.0.192.in-addr.arpa", None),
        ("300.2.0.192.in-addr.arpa", None),
        ("x.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", None),
        ("g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", None),
    ],
)
def test_reverse(qname: str, want: object) -> None:
    assert parse(qname) == ReverseName(want)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("labels", "alt", "want"),
    [
        (("web", "service", "consul"), "", Zone("consul.", ("web", "service"))),
        (("web", "service", "example", "com"), "example.com.", Zone("example.com.", ("web", "service"))),
        (("consul",), "", Zone("consul.", ())),
        (("example", "com"), "", Zone("", ("example", "com"))),
        (("notconsul",), "", Zone("", ("notconsul",))),
        (("1", "in-addr", "arpa"), "", Zone("consul.", ("1", "in-addr", "arpa"), reverse=True)),
        (("a", "dc1", "consul"), "dc1.consul.", Zone("dc1.consul.", ("a",))),
    ],
)
def test_classify(labels: tuple[str, ...], alt: str, want: Zone) -> None:
    assert classify(labels, "consul.", alt) == want
