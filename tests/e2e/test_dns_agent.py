"""``dig`` against a real agent: every name form over UDP and TCP, and health changes at once."""

from __future__ import annotations

import shutil

import dns.message
import dns.query
import dns.rdatatype
import pytest

from dig import dig
from waypost.testing import AgentProcess

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed")


def ask(agent: AgentProcess, name: str, qtype: str = "A") -> list[str]:
    reply = dns.query.udp(dns.message.make_query(name, qtype), "127.0.0.1", port=agent.dns_port, timeout=2)
    return sorted(rd.to_text() for rrset in reply.answer for rd in rrset)


@pytest.fixture(scope="module")
def agent(dev_agent: AgentProcess) -> AgentProcess:
    for i, address in enumerate(("127.0.0.21", "127.0.0.22")):
        dev_agent.put(
            "/v1/agent/service/register",
            {"Name": "shop", "ID": f"shop-{i}", "Port": 7000 + i, "Address": address, "Tags": [f"t{i}"],
             "Check": {"TTL": "60s", "Status": "passing"}},
        )  # fmt: skip
    return dev_agent


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_name_forms(agent: AgentProcess, tcp: bool) -> None:
    node = agent.get("/v1/agent/self")["Config"]["NodeName"]
    assert dig(agent, "shop.service.consul", tcp=tcp) == ["127.0.0.21", "127.0.0.22"]
    assert dig(agent, "SHOP.service.dc1.consul", tcp=tcp) == ["127.0.0.21", "127.0.0.22"]
    assert dig(agent, "t1.shop.service.consul", tcp=tcp) == ["127.0.0.22"]
    srv = dig(agent, "_shop._tcp.service.consul", "SRV", tcp=tcp)
    assert srv == ["1 1 7000 7f000015.addr.dc1.consul.", "1 1 7001 7f000016.addr.dc1.consul."]
    assert dig(agent, "_shop._t0.service.consul", "SRV", tcp=tcp) == ["1 1 7000 7f000015.addr.dc1.consul."]
    assert dig(agent, f"{node}.node.consul", tcp=tcp) == ["127.0.0.1"]
    assert dig(agent, "7f000015.addr.dc1.consul", tcp=tcp) == ["127.0.0.21"]
    assert dig(agent, "1.0.0.127.in-addr.arpa", "PTR", tcp=tcp) == [f"{node}.node.dc1.consul."]
    assert dig(agent, "21.0.0.127.in-addr.arpa", "PTR", tcp=tcp) == ["shop.service.dc1.consul."]


def test_unknown_names_and_types(agent: AgentProcess) -> None:
    reply = dns.query.udp(
        dns.message.make_query("nope.service.consul", "A"), "127.0.0.1", port=agent.dns_port
    )
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.authority[0].rdtype == dns.rdatatype.SOA
    reply = dns.query.udp(
        dns.message.make_query("shop.service.consul", "AAAA"), "127.0.0.1", port=agent.dns_port
    )
    assert (reply.rcode(), reply.answer) == (dns.rcode.NOERROR, [])
    reply = dns.query.udp(dns.message.make_query("example.org", "A"), "127.0.0.1", port=agent.dns_port)
    assert reply.rcode() == dns.rcode.REFUSED


def test_health_change_and_deregistration_show_at_once(agent: AgentProcess) -> None:
    """The very next query after the API call answers sees the change (read-your-writes)."""
    assert ask(agent, "shop.service.consul") == ["127.0.0.21", "127.0.0.22"]
    agent.put("/v1/agent/check/fail/service:shop-1")
    assert ask(agent, "shop.service.consul") == ["127.0.0.21"]
    agent.put("/v1/agent/check/pass/service:shop-1")
    assert ask(agent, "shop.service.consul") == ["127.0.0.21", "127.0.0.22"]
    agent.put("/v1/agent/service/deregister/shop-0")
    assert ask(agent, "shop.service.consul") == ["127.0.0.22"]


def test_connect_names_answer_the_services_proxies_and_native_instances(agent: AgentProcess) -> None:
    proxy = {"ID": "ledger-proxy-1", "Service": "ledger-proxy", "Kind": "connect-proxy", "Port": 21900,
             "Address": "127.0.0.31", "Proxy": {"DestinationServiceName": "ledger"}}  # fmt: skip
    agent.put("/v1/catalog/register", {"Node": "dns-mesh", "Address": "127.0.0.30", "Service": proxy})
    native = {"Name": "ledger", "ID": "ledger-native", "Port": 7301, "Address": "127.0.0.32"}
    agent.put("/v1/agent/service/register", {**native, "Connect": {"Native": True}})
    agent.put("/v1/agent/service/register", {"Name": "ledger", "ID": "ledger-plain", "Address": "127.0.0.33"})
    assert dig(agent, "ledger.connect.consul") == ["127.0.0.31", "127.0.0.32"]
    srv = dig(agent, "Ledger.connect.dc1.consul", "SRV", tcp=True)
    assert srv == ["1 1 21900 7f00001f.addr.dc1.consul.", "1 1 7301 7f000020.addr.dc1.consul."]
    assert dig(agent, "ledger-proxy.connect.consul") == []
    agent.put("/v1/catalog/deregister", {"Node": "dns-mesh"})
    assert dig(agent, "ledger.connect.consul") == ["127.0.0.32"]
