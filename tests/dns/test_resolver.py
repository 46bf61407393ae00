"""Questions through the resolver, CoreDNS style: one table of cases per concern."""

from __future__ import annotations

import random

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest
from dnskit import NOW, SOA, Case, ask, check, make_resolver, texts

from waypost.dns import DnsConfig, Forward, Resolver
from waypost.dns.backend import Pending, PreparedResult
from waypost.dns.static import StaticBackend
from waypost.state.model import ConnectProxyConfig, HealthCheck, Node, NodeService, ServiceConnect

WEB_A = ("web.service.consul. 0 IN A 10.0.0.1", "web.service.consul. 0 IN A 10.0.0.2")
FOO_TXT_SHORT = ('foo.node.consul. 0 IN TXT "rack=a"', 'foo.node.consul. 0 IN TXT "hello world"')
FOO_TXT = ('foo.node.dc1.consul. 0 IN TXT "rack=a"', 'foo.node.dc1.consul. 0 IN TXT "hello world"')

SERVICE_CASES = [
    Case("web.service.consul.", "A", answer=WEB_A),
    Case("WEB.Service.CONSUL.", "A", answer=WEB_A),
    Case(
        "web.service.dc1.consul.",
        "A",
        answer=("web.service.dc1.consul. 0 IN A 10.0.0.1", "web.service.dc1.consul. 0 IN A 10.0.0.2"),
    ),
    Case("primary.web.service.consul.", "A", answer=("primary.web.service.consul. 0 IN A 10.0.0.1",)),
    Case("PRIMARY.web.service.consul.", "A", answer=("primary.web.service.consul. 0 IN A 10.0.0.1",)),
    Case("nope.web.service.consul.", "A", "NXDOMAIN", ns=(SOA,)),
    Case(
        "web.service.consul.",
        "SRV",
        answer=(
            "web.service.consul. 0 IN SRV 1 5 80 foo.node.dc1.consul.",
            "web.service.consul. 0 IN SRV 1 2 81 bar.node.dc1.consul.",
        ),
        extra=(
            "foo.node.dc1.consul. 0 IN A 10.0.0.1",
            "bar.node.dc1.consul. 0 IN A 10.0.0.2",
            *FOO_TXT,
        ),
    ),
    Case(
        "_web._primary.service.consul.",
        "SRV",
        answer=("_web._primary.service.consul. 0 IN SRV 1 5 80 foo.node.dc1.consul.",),
        extra=("foo.node.dc1.consul. 0 IN A 10.0.0.1", *FOO_TXT),
    ),
    Case(
        "_db._tcp.consul.",
        "SRV",
        answer=("_db._tcp.consul. 0 IN SRV 1 1 5432 0a010001.addr.dc1.consul.",),
        extra=("0a010001.addr.dc1.consul. 0 IN A 10.1.0.1", *FOO_TXT),
    ),
    Case("db.service.consul.", "A", answer=("db.service.consul. 0 IN A 10.1.0.1",)),
    Case("web.service.consul.", "AAAA", ns=(SOA,)),
    Case("web.service.consul.", "MX", ns=(SOA,)),
    Case("web.service.consul.", "TXT", answer=WEB_A),
    Case("down.service.consul.", "A", "NXDOMAIN", ns=(SOA,)),
    Case("missing.service.consul.", "A", "NXDOMAIN", ns=(SOA,)),
    Case("web.service.dc2.consul.", "A", "NXDOMAIN", ns=(SOA,)),
    Case("api.service.consul.", "AAAA", answer=("api.service.consul. 0 IN AAAA 2001:db8::6",)),
    Case("api.service.consul.", "A", ns=(SOA,)),
    Case("dual.service.consul.", "A", answer=("dual.service.consul. 0 IN A 10.2.0.5",)),
    Case("external.service.consul.", "A", answer=("external.service.consul. 0 IN CNAME ext.example.com.",)),
    Case(
        "external.service.consul.",
        "SRV",
        answer=("external.service.consul. 0 IN SRV 1 1 443 ext.example.com.",),
    ),
    Case("pq.query.consul.", "A", answer=("pq.query.consul. 30 IN A 10.0.0.1",)),
    Case("unknown.query.consul.", "A", "NXDOMAIN", ns=(SOA,)),
]

NODE_CASES = [
    Case("foo.node.consul.", "A", answer=("foo.node.consul. 0 IN A 10.0.0.1",), extra=FOO_TXT_SHORT),
    Case("FOO.node.dc1.consul.", "A", answer=("foo.node.dc1.consul. 0 IN A 10.0.0.1",), extra=FOO_TXT),
    Case("foo.node.consul.", "TXT", answer=FOO_TXT_SHORT),
    Case(
        "foo.node.consul.",
        "ANY",
        answer=("foo.node.consul. 0 IN A 10.0.0.1", *FOO_TXT_SHORT),
    ),
    Case("foo.node.consul.", "AAAA", ns=(SOA,)),
    Case("foo.node.consul.", "SRV", ns=(SOA,)),
    Case("bar.node.consul.", "TXT", ns=(SOA,)),
    Case("six.node.consul.", "AAAA", answer=("six.node.consul. 0 IN AAAA 2001:db8::6",)),
    Case("dual.node.consul.", "AAAA", answer=("dual.node.consul. 0 IN AAAA 2001:db8::5",)),
    Case("dual.node.consul.", "A", answer=("dual.node.consul. 0 IN A 10.0.0.5",)),
    Case("ext.node.consul.", "A", answer=("ext.node.consul. 0 IN CNAME ext.example.com.",)),
    Case("nope.node.consul.", "A", "NXDOMAIN", ns=(SOA,)),
    Case("foo.node.dc9.consul.", "A", "NXDOMAIN", ns=(SOA,)),
]

SIX_ARPA = "6." + "0." * 23 + "8.b.d.0.1.0.0.2.ip6.arpa."
ZONE_CASES = [
    Case("c000020a.addr.dc1.consul.", "A", answer=("c000020a.addr.dc1.consul. 0 IN A 192.0.2.10",)),
    Case("c000020a.addr.consul.", "ANY", answer=("c000020a.addr.consul. 0 IN A 192.0.2.10",)),
    Case("c000020a.addr.dc1.consul.", "AAAA", ns=(SOA,)),
    Case(
        "20010db8000000000000000000000001.addr.dc1.consul.",
        "AAAA",
        answer=("20010db8000000000000000000000001.addr.dc1.consul. 0 IN AAAA 2001:db8::1",),
    ),
    Case("zzzz.addr.dc1.consul.", "A", "NXDOMAIN", ns=(SOA,)),
    Case("1.0.0.10.in-addr.arpa.", "PTR", answer=("1.0.0.10.in-addr.arpa. 0 IN PTR foo.node.dc1.consul.",)),
    Case("1.0.1.10.in-addr.arpa.", "PTR", answer=("1.0.1.10.in-addr.arpa. 0 IN PTR db.service.dc1.consul.",)),
    Case(
        SIX_ARPA,
        "PTR",
        answer=(f"{SIX_ARPA} 0 IN PTR six.node.dc1.consul.",),
    ),
    Case("9.9.9.10.in-addr.arpa.", "PTR", "NXDOMAIN", ns=(SOA,)),
    Case(
        "consul.",
        "SOA",
        answer=(SOA,),
        ns=("consul. 0 IN NS server.node.dc1.consul.",),
        extra=("server.node.dc1.consul. 0 IN A 10.0.0.9",),
    ),
    Case(
        "web.service.consul.",
        "SOA",
        answer=(SOA,),
        ns=("consul. 0 IN NS server.node.dc1.consul.",),
        extra=("server.node.dc1.consul. 0 IN A 10.0.0.9",),
    ),
    Case(
        "consul.",
        "NS",
        answer=("consul. 0 IN NS server.node.dc1.consul.",),
        extra=("server.node.dc1.consul. 0 IN A 10.0.0.9",),
    ),
    Case("consul.", "A", "NXDOMAIN", ns=(SOA,)),
    Case("consul.", "AXFR", "NOTIMP"),
    Case("example.com.", "A", "REFUSED"),
]


VIRTUAL_CASES = [
    Case("web.virtual.consul.", "A", answer=("web.virtual.consul. 0 IN A 127.240.0.1",)),
    Case("WEB.Virtual.dc1.consul.", "A", answer=("web.virtual.dc1.consul. 0 IN A 127.240.0.1",)),
    Case("primary.web.virtual.consul.", "A", answer=("primary.web.virtual.consul. 0 IN A 127.240.0.1",)),
    Case("web.virtual.consul.", "ANY", answer=("web.virtual.consul. 0 IN A 127.240.0.1",)),
    Case("web.virtual.consul.", "AAAA", ns=(SOA,)),
    Case("api.virtual.consul.", "AAAA", answer=("api.virtual.consul. 0 IN AAAA fd00:ec2::5",)),
    Case("db.virtual.consul.", "A", ns=(SOA,)),
    Case("web.virtual.dc2.consul.", "A", "NXDOMAIN", ns=(SOA,)),
]


@pytest.mark.parametrize(
    "case", SERVICE_CASES + NODE_CASES + ZONE_CASES + VIRTUAL_CASES, ids=lambda c: f"{c.qname}/{c.qtype}"
)
def test_cases(resolver: Resolver, case: Case) -> None:
    check(resolver, case)


@pytest.mark.parametrize(
    ("config", "case"),
    [
        ({"only_passing": True}, Case("web.service.consul.", "A", answer=WEB_A[:1])),
        (
            {"enable_additional_node_meta_txt": False},
            Case(
                "_web._primary.service.consul.",
                "SRV",
                answer=("_web._primary.service.consul. 0 IN SRV 1 5 80 foo.node.dc1.consul.",),
                extra=("foo.node.dc1.consul. 0 IN A 10.0.0.1",),
            ),
        ),
        (
            {"enable_additional_node_meta_txt": False},
            Case("foo.node.consul.", "A", answer=("foo.node.consul. 0 IN A 10.0.0.1",)),
        ),
        (
            {"service_ttl": {"w*": "10s", "web": "30s", "*": "5s"}},
            Case("web.service.consul.", "A", answer=tuple(a.replace(" 0 ", " 30 ") for a in WEB_A)),
        ),
        (
            {"service_ttl": {"*": "5s"}},
            Case("db.service.consul.", "A", answer=("db.service.consul. 5 IN A 10.1.0.1",)),
        ),
        ({"node_ttl": "1m"}, Case("bar.node.consul.", "A", answer=("bar.node.consul. 60 IN A 10.0.0.2",))),
        (
            {"soa": {"min_ttl": 30, "refresh": 1}},
            Case(
                "x.consul.",
                "A",
                "NXDOMAIN",
                ns=(f"consul. 30 IN SOA ns.consul. hostmaster.consul. {int(NOW)} 1 600 86400 30",),
            ),
        ),
        (
            {"alt_domain": "example.org"},
            Case("bar.node.example.org.", "A", answer=("bar.node.example.org. 0 IN A 10.0.0.2",)),
        ),
        (
            {"alt_domain": "example.org"},
            Case(
                "_web._secondary.service.example.org.",
                "SRV",
                answer=("_web._secondary.service.example.org. 0 IN SRV 1 2 81 bar.node.dc1.example.org.",),
                extra=("bar.node.dc1.example.org. 0 IN A 10.0.0.2",),
            ),
        ),
        (
            {"alt_domain": "example.org"},
            Case(
                "x.example.org.",
                "A",
                "NXDOMAIN",
                ns=(SOA.replace("consul.", "example.org."),),
            ),
        ),
        ({"domain": "test."}, Case("bar.node.test.", "A", answer=("bar.node.test. 0 IN A 10.0.0.2",))),
        ({"domain": "test."}, Case("bar.node.consul.", "A", "REFUSED")),
    ],
)
def test_configured(backend: StaticBackend, config: dict[str, object], case: Case) -> None:
    check(make_resolver(backend, **config), case)


def test_a_record_limit_caps_every_transport(backend: StaticBackend) -> None:
    resolver = make_resolver(backend, a_record_limit=1)
    for tcp in (False, True):
        assert len(ask(resolver, "web.service.consul", "A", tcp=tcp, payload=4096).answer[0]) == 1
    assert len(ask(resolver, "web.service.consul", "SRV", payload=4096).answer[0]) == 2


def test_answers_are_shuffled(backend: StaticBackend) -> None:
    resolver = make_resolver(backend)
    firsts = {ask(resolver, "web.service.consul", "A").answer[0][0].to_text() for _ in range(200)}
    assert firsts == {"10.0.0.1", "10.0.0.2"}


def test_flags_and_id_follow_the_query(resolver: Resolver) -> None:
    for flags in (0, dns.flags.RD, dns.flags.CD, dns.flags.RD | dns.flags.CD):
        query = dns.message.make_query("bar.node.consul", "A", id=4242)
        query.flags = flags
        reply = dns.message.from_wire(_bytes(resolver.handle(query.to_wire())))
        assert reply.id == 4242
        want = dns.flags.QR | dns.flags.AA | (flags & (dns.flags.RD | dns.flags.CD))
        assert reply.flags == want
        assert reply.question[0].name.to_text() == "bar.node.consul."


def test_edns_is_echoed_with_the_client_size(resolver: Resolver) -> None:
    reply = ask(resolver, "bar.node.consul", "A", payload=1400)
    assert reply.edns == 0
    assert reply.payload == 1400
    assert ask(resolver, "bar.node.consul", "A").edns == -1
    assert ask(resolver, "example.com", "A", payload=1400).edns == -1


def test_client_subnet_is_echoed(resolver: Resolver) -> None:
    ecs = dns.edns.ECSOption("192.0.2.0", 24)
    query = dns.message.make_query("bar.node.consul", "A", use_edns=0, options=[ecs])
    reply = dns.message.from_wire(_bytes(resolver.handle(query.to_wire())))
    (option,) = reply.options
    assert isinstance(option, dns.edns.ECSOption)
    assert (option.address, option.srclen, option.scopelen) == ("192.0.2.0", 24, 0)
    assert texts(reply.answer) == ["bar.node.consul. 0 IN A 10.0.0.2"]


def test_recursion_is_forwarded_with_a_servfail_fallback(backend: StaticBackend) -> None:
    resolver = make_resolver(backend, recursors=["127.0.0.1:5353"])
    query = dns.message.make_query("example.com", "A", id=77)
    outcome = resolver.handle(query.to_wire())
    assert isinstance(outcome, Forward)
    assert outcome.query == query.to_wire()
    servfail = dns.message.from_wire(outcome.servfail)
    assert (servfail.id, servfail.rcode()) == (77, dns.rcode.SERVFAIL)
    assert servfail.flags & dns.flags.RA
    assert not servfail.flags & dns.flags.AA
    assert isinstance(
        resolver.handle(dns.message.make_query("9.9.9.10.in-addr.arpa", "PTR").to_wire()), Forward
    )
    local = ask(resolver, "bar.node.consul", "A")
    assert local.flags & dns.flags.RA


def test_prepared_queries_sorted_near_keep_their_order_and_pending_ones_wait() -> None:
    backend = StaticBackend()
    nodes = [Node(Node=f"n{i}", Address=f"10.7.0.{i}") for i in range(1, 5)]
    backend.load(nodes, {n.Node: [NodeService(ID="web", Service="web", Port=80)] for n in nodes})
    web = list(reversed(backend.service_instances("web", None)))
    near = PreparedResult("web", "dc1", web, near=True)
    backend.load(nodes, {n.Node: [NodeService(ID="web", Service="web", Port=80)] for n in nodes},
                 prepared={"near": near, "later": Pending("Later")})  # fmt: skip
    resolver = make_resolver(backend)
    want = [f"10.7.0.{i}" for i in range(4, 0, -1)]
    for _ in range(20):
        assert [r.to_text() for r in ask(resolver, "near.query.consul", "A", tcp=True).answer[0]] == want
    outcome = resolver.handle(dns.message.make_query("later.query.consul", "A", id=9).to_wire())
    assert isinstance(outcome, Forward)
    assert (outcome.prepared_query, outcome.datacenter) == ("Later", "")
    assert dns.message.from_wire(outcome.servfail).rcode() == dns.rcode.SERVFAIL


def test_connect_names_answer_the_services_healthy_proxies_and_native_instances() -> None:
    def proxy(sid: str, destination: str, port: int) -> NodeService:
        config = ConnectProxyConfig(DestinationServiceName=destination)
        return NodeService(
            ID=sid, Service=f"{destination}-proxy", Kind="connect-proxy", Port=port, Proxy=config
        )

    native = NodeService(ID="pay-n", Service="Pay", Port=81, Connect=ServiceConnect(Native=True))
    services = {
        "m1": [
            NodeService(ID="pay", Service="Pay", Port=80),
            proxy("pay-p", "Pay", 21000),
            proxy("db-p", "db", 21001),
        ],
        "m2": [native, proxy("pay-sick", "Pay", 21002)],
    }
    sick = HealthCheck(Node="m2", CheckID="c", Name="c", Status="critical", ServiceID="pay-sick")
    backend = StaticBackend()
    backend.load([Node(Node="m1", Address="10.8.0.1"), Node(Node="m2", Address="10.8.0.2")], services, [sick])
    resolver = make_resolver(backend)
    both = ("pay.connect.consul. 0 IN A 10.8.0.1", "pay.connect.consul. 0 IN A 10.8.0.2")
    check(resolver, Case("pay.connect.consul.", "A", answer=both))
    m1, m2 = "m1.node.dc1.consul. 0 IN A 10.8.0.1", "m2.node.dc1.consul. 0 IN A 10.8.0.2"
    srv = ("pay.connect.dc1.consul. 0 IN SRV 1 1 21000 m1.node.dc1.consul.",
           "pay.connect.dc1.consul. 0 IN SRV 1 1 81 m2.node.dc1.consul.")  # fmt: skip
    check(resolver, Case("pay.connect.dc1.consul.", "SRV", answer=srv, extra=(m1, m2)))
    db = ("db.connect.consul. 0 IN SRV 1 1 21001 m1.node.dc1.consul.",)
    check(resolver, Case("db.connect.consul.", "SRV", answer=db, extra=(m1,)))
    check(resolver, Case("pay-proxy.connect.consul.", "A", "NXDOMAIN", ns=(SOA,)))


def test_new_revision_replaces_prepared_answers(backend: StaticBackend) -> None:
    resolver = make_resolver(backend)
    assert ask(resolver, "solo.service.consul", "A").rcode() == dns.rcode.NXDOMAIN
    backend.load([Node(Node="n", Address="10.9.9.9")], {"n": [NodeService(ID="solo", Service="solo")]})
    assert texts(ask(resolver, "solo.service.consul", "A").answer) == ["solo.service.consul. 0 IN A 10.9.9.9"]


def test_soa_serial_follows_the_clock(backend: StaticBackend) -> None:
    now = [NOW]
    resolver = Resolver(backend, DnsConfig(), rng=random.Random(1), clock=lambda: now[0])
    first = ask(resolver, "x.consul", "A").authority[0][0].serial
    now[0] += 5
    assert ask(resolver, "x.consul", "A").authority[0][0].serial == first + 5


def test_backend_errors_become_servfail(backend: StaticBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(service: str, tag: str | None, *, connect: bool = False) -> list[object]:
        raise RuntimeError("catalog unavailable")

    monkeypatch.setattr(backend, "service_instances", boom)
    reply = ask(make_resolver(backend), "web.service.consul", "A")
    assert reply.rcode() == dns.rcode.SERVFAIL


def _bytes(reply: object) -> bytes:
    assert isinstance(reply, bytes)
    return reply


HEADER = b"\x12\x34\x01\x00"
QUESTION = b"\x03bar\x04node\x06consul\x00\x00\x01\x00\x01"


@pytest.mark.parametrize(
    ("packet", "want"),
    [
        (b"", None),
        (b"\x12\x34\x01", None),
        (HEADER + b"\x00\x01\x00\x00\x00\x00", None),  # shorter than a header
        (b"\x12\x34\x81\x00" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + QUESTION, None),  # a response
        (b"\x12\x34\x11\x00" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + QUESTION, b"\x12\x34\x90\x04"),  # IQUERY
        (b"\x12\x34\x29\x00" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + QUESTION, b"\x12\x34\xa8\x04"),  # UPDATE
        (HEADER + b"\x00\x00\x00\x00\x00\x00\x00\x00", b"\x12\x34\x81\x01"),  # no question
        (HEADER + b"\x00\x02\x00\x00\x00\x00\x00\x00" + QUESTION * 2, b"\x12\x34\x81\x01"),
        (HEADER + b"\x00\x01\x00\x00\x00\x00\x00\x03" + QUESTION, b"\x12\x34\x81\x01"),
        (HEADER + b"\x00\x01\x00\x00\x00\x00\x00\x00" + QUESTION[:-3], b"\x12\x34\x81\x01"),  # cut short
        (HEADER + b"\x00\x01\x00\x00\x00\x00\x00\x01" + QUESTION, b"\x12\x34\x81\x01"),  # missing OPT
        (HEADER + b"\x00\x01\x00\x00\x00\x00\x00\x00" + b"\xc0\x0c\x00\x01\x00\x01", b"\x12\x34\x81\x01"),
        (
            HEADER + b"\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x41" + b"a" * 70 + QUESTION[-5:],
            b"\x12\x34\x81\x01",
        ),
    ],
)
def test_hostile_packets(resolver: Resolver, packet: bytes, want: bytes | None) -> None:
    reply = resolver.handle(packet)
    if want is None:
        assert reply is None
    else:
        assert isinstance(reply, bytes)
        assert reply == want + b"\x00" * 8


def test_trailing_garbage_and_pointer_names_still_get_answers(resolver: Resolver) -> None:
    plain = HEADER + b"\x00\x01\x00\x00\x00\x00\x00\x00" + QUESTION
    for packet in (plain + b"junk", plain):
        reply = dns.message.from_wire(_bytes(resolver.handle(packet)))
        assert texts(reply.answer) == ["bar.node.consul. 0 IN A 10.0.0.2"]


def test_hot_path_matches_general_path(backend: StaticBackend) -> None:
    for payload in (None, 1232):
        cold = ask(make_resolver(backend), "Bar.Node.Consul", "A", payload=payload)
        resolver = make_resolver(backend)
        ask(resolver, "bar.node.consul", "A", payload=payload)
        warm = ask(resolver, "Bar.Node.Consul", "A", payload=payload)
        assert cold.to_wire()[2:] == warm.to_wire()[2:]


def test_ns_lists_at_most_three_servers_with_glue() -> None:
    servers = StaticBackend()
    nodes = [Node(Node=f"S{i}", Address=f"10.8.0.{i}") for i in range(5)]
    consul = [NodeService(ID=f"consul{p}", Service="consul", Port=p) for p in (8300, 8301)]
    servers.load(nodes, {n.Node: consul for n in nodes})
    resolver = make_resolver(servers)
    seen = set()
    for _ in range(50):
        reply = ask(resolver, "consul", "NS")
        targets = [rd.target.to_text() for rd in reply.answer[0]]
        assert len(targets) == 3
        assert [rrset.name.to_text() for rrset in reply.additional] == targets
        seen.update(targets)
    assert seen == {f"s{i}.node.dc1.consul." for i in range(5)}
