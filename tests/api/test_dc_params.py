"""``?dc`` and ``?peer`` on every route: one datacenter and no peers, answered as Consul does."""

from __future__ import annotations

import json
import re

import consul
import pytest

from waypost.api.routes import DC_AGNOSTIC, ROUTES
from waypost.testing import AgentProcess

ELSEWHERE = "dc-elsewhere"


def _concrete(path: str) -> str:
    return re.sub(r"/:\w+$", "/probe", path)


ROUTED = sorted(
    {
        (method, _concrete(path))
        for methods, path, _ in ROUTES
        for method in methods[:1]
        if path.startswith("/v1/") and not path.startswith(DC_AGNOSTIC)
    }
)


@pytest.mark.parametrize(("method", "path"), ROUTED)
def test_other_datacenter_has_no_path(dev_agent: AgentProcess, method: str, path: str) -> None:
    body = None if method in ("GET", "DELETE") else b"{}"
    status, _, answer = dev_agent.request(method, f"{path}?dc={ELSEWHERE}", body)
    assert (status, answer) == (500, b"No path to datacenter")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/agent/self",
        "/v1/agent/members",
        "/v1/event/list",
        "/v1/catalog/datacenters",
        "/v1/coordinate/datacenters",
    ],
)
def test_agent_local_routes_ignore_dc(dev_agent: AgentProcess, path: str) -> None:
    status, _, _ = dev_agent.request("GET", f"{path}?dc={ELSEWHERE}")
    assert status == 200


def test_writes_to_another_datacenter_change_nothing(dev_agent: AgentProcess) -> None:
    client = consul.Consul(port=dev_agent.http_port)
    with pytest.raises(consul.ConsulException, match="500 No path to datacenter"):
        client.kv.put("dc-probe", "value", dc=ELSEWHERE)
    with pytest.raises(consul.ConsulException, match="No path to datacenter"):
        client.catalog.register("remote-node", "10.0.0.9", dc=ELSEWHERE)
    status, _, _ = dev_agent.request("DELETE", f"/v1/kv/dc-probe?dc={ELSEWHERE}")
    assert status == 500
    assert client.kv.get("dc-probe")[1] is None
    assert "remote-node" not in {n["Node"] for n in client.catalog.nodes()[1]}


def test_reads_from_another_datacenter_fail_and_the_own_one_works(dev_agent: AgentProcess) -> None:
    client = consul.Consul(port=dev_agent.http_port)
    for read in (client.catalog.nodes, lambda dc: client.health.service("consul", dc=dc)):
        with pytest.raises(consul.ConsulException, match="No path to datacenter"):
            read(dc=ELSEWHERE)
        assert read(dc="dc1")[1]


# Peering does not exist here, so every named peer is unknown and has nothing.
PEER_SHAPES = [
    ("/v1/catalog/nodes", []),
    ("/v1/catalog/services", {}),
    ("/v1/catalog/service/consul", []),
    ("/v1/catalog/node/test-node", None),
    ("/v1/catalog/node-services/test-node", {"Node": None, "Services": None}),
    ("/v1/health/node/test-node", []),
    ("/v1/health/checks/consul", []),
    ("/v1/health/service/consul", []),
    ("/v1/health/state/any", []),
]


@pytest.mark.parametrize(("path", "empty"), PEER_SHAPES)
def test_unknown_peer_reads_are_empty(dev_agent: AgentProcess, path: str, empty: object) -> None:
    status, headers, body = dev_agent.request("GET", f"{path}?peer=other-cluster")
    assert status == 200
    assert json.loads(body) == empty
    assert int(headers["X-Consul-Index"]) >= 1


def test_unknown_peer_through_a_client(dev_agent: AgentProcess) -> None:
    client = consul.Consul(port=dev_agent.http_port)
    assert client.health.service("consul")[1]
    assert client.health.service("consul", peer="other-cluster")[1] == []
    assert client.catalog.service("consul", peer="other-cluster")[1] == []


def test_malformed_filter_is_refused_even_for_a_peer(dev_agent: AgentProcess) -> None:
    status, _, body = dev_agent.request("GET", "/v1/catalog/nodes?peer=other-cluster&filter=Node%20%3D%3D")
    assert status == 400
    assert body.startswith(b"Failed to create boolean expression evaluator: ")
