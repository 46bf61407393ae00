"""DNS with ACLs on and default deny: answers only what the DNS token may read (real dig)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acl_kit import ROOT, Caller, start_acl_agent
from dig import dig
from waypost.testing import AgentProcess

DNS_TOKEN = "6f1c1f6e-0d3b-4a8f-9c55-3a1f0b5c7e21"


@pytest.fixture(scope="module")
def dns_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    tmp: Path = tmp_path_factory.mktemp("acl-dns")
    with start_acl_agent(tmp, f'dns = "{DNS_TOKEN}"') as agent:
        call = Caller(agent)
        call.ok("PUT", "/v1/acl/policy", {"Name": "dns", "Rules": 'service "web" { policy = "read" }'})
        call.ok("PUT", "/v1/acl/token", {"SecretID": DNS_TOKEN, "Policies": [{"Name": "dns"}]})
        for name, address in (("web", "192.0.2.10"), ("db", "192.0.2.20")):
            call.ok("PUT", "/v1/agent/service/register", {"Name": name, "Address": address, "Port": 80})
        yield agent


def _until(agent: AgentProcess, name: str, expected: list[str]) -> list[str]:
    """The answer once it is ``expected``, or the last one after a bounded wait."""
    deadline = time.monotonic() + 5
    answer = dig(agent, name)
    while answer != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        answer = dig(agent, name)
    return answer


def test_dns_answers_only_what_the_dns_token_may_read(dns_agent: AgentProcess) -> None:
    assert dig(dns_agent, "web.service.consul") == []  # service:read alone: the node is hidden
    assert dig(dns_agent, "acl-node.node.consul") == []
    call = Caller(dns_agent)
    policy = call.ok("GET", "/v1/acl/policy/name/dns")
    rules = 'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }'
    call.ok("PUT", f"/v1/acl/policy/{policy['ID']}", {"Name": "dns", "Rules": rules})
    assert _until(dns_agent, "web.service.consul", ["192.0.2.10"]) == ["192.0.2.10"]
    assert dig(dns_agent, "db.service.consul") == []
    assert dig(dns_agent, "acl-node.node.consul") == ["127.0.0.1"]


def test_a_dns_token_set_at_run_time_is_used(dns_agent: AgentProcess) -> None:
    call = Caller(dns_agent)
    other = call.token_for('service "db" { policy = "read" }\nnode_prefix "" { policy = "read" }', "dns-db")
    assert call("PUT", "/v1/agent/token/dns", {"Token": other}, token=ROOT)[0] == 200
    assert _until(dns_agent, "db.service.consul", ["192.0.2.20"]) == ["192.0.2.20"]
    assert dig(dns_agent, "web.service.consul") == []


def test_a_connect_name_needs_read_on_its_service_and_on_each_proxy(dns_agent: AgentProcess) -> None:
    call = Caller(dns_agent)
    for sid, destination, address in (("web-proxy", "web", "192.0.2.11"), ("web-for-db", "db", "192.0.2.21")):
        proxy = {"Service": sid, "Kind": "connect-proxy", "Port": 21000, "Address": address,
                 "Proxy": {"DestinationServiceName": destination}}  # fmt: skip
        call.ok("PUT", "/v1/catalog/register", {"Node": "acl-mesh", "Address": "192.0.2.1", "Service": proxy})
    reader = call.token_for(
        'service_prefix "web" { policy = "read" }\nnode_prefix "" { policy = "read" }', "mesh"
    )
    assert call("PUT", "/v1/agent/token/dns", {"Token": reader}, token=ROOT)[0] == 200
    assert _until(dns_agent, "web.connect.consul", ["192.0.2.11"]) == ["192.0.2.11"]
    assert dig(dns_agent, "db.connect.consul") == []  # its proxy is readable, db itself is not
