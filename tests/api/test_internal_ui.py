"""Consul's /v1/internal/ui reads against a real agent: the services summary counts
instances and tallies checks (node checks included, once per node) as Consul's does, and
the node reads carry each node's services and checks; all three block."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from waypost.testing import AgentProcess

NODES = {
    "n1": {"Node": "n1", "Address": "10.0.0.1", "NodeMeta": {"rack": "r1"}},
    "n2": {"Node": "n2", "Address": "10.0.0.2"},
}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    with AgentProcess(["-dev", "-node", "ui-node"], log_path=log) as running:
        for node, status in (("n1", "passing"), ("n2", "critical")):
            running.put("/v1/catalog/register", {
                **NODES[node], "Check": {"CheckID": "serfHealth", "Name": "Serf", "Status": "passing"},
            })  # fmt: skip
            running.put("/v1/catalog/register", {
                **NODES[node],
                "Service": {"ID": "api-1", "Service": "api", "Tags": ["v2", "blue"], "Port": 80,
                            "Meta": {"external-source": "kubernetes"}},
                "Check": {"CheckID": "api-http", "ServiceID": "api-1", "Status": status},
            })  # fmt: skip
        running.put("/v1/catalog/register", {**NODES["n1"], "Service": {"Service": "bare"}})
        yield running


def _by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["Name" if "Name" in row else "Node"]: row for row in rows}


def test_services_summary(agent: AgentProcess) -> None:
    found = _by_name(agent.get("/v1/internal/ui/services"))
    api = found["api"]
    assert api["Nodes"] == ["n1", "n2"]
    assert api["Tags"] == ["blue", "v2"]
    assert api["ExternalSources"] == ["kubernetes"]
    assert (api["InstanceCount"], api["ChecksPassing"], api["ChecksWarning"], api["ChecksCritical"]) == (
        2,
        3,
        0,
        1,
    )
    assert api["Datacenter"] == "dc1"
    assert "Kind" not in api
    assert api["GatewayConfig"] == {}
    bare = found["bare"]
    assert (bare["Tags"], bare["ExternalSources"], bare["InstanceCount"]) == (None, None, 1)
    assert bare["ChecksPassing"] == 1  # n1's serfHealth
    assert list(found) == sorted(found)
    assert found["consul"]["Nodes"] == ["ui-node"]


def test_nodes_carry_services_and_checks(agent: AgentProcess) -> None:
    nodes = _by_name(agent.get("/v1/internal/ui/nodes"))
    n1 = nodes["n1"]
    assert n1["Address"] == "10.0.0.1"
    assert n1["Meta"] == {"rack": "r1"}
    assert [s["Service"] for s in n1["Services"]] == ["api", "bare"]
    assert {c["CheckID"]: c["Status"] for c in n1["Checks"]} == {
        "api-http": "passing",
        "serfHealth": "passing",
    }
    one = agent.get("/v1/internal/ui/node/n2")
    assert one["Node"] == "n2"
    assert [c["Status"] for c in one["Checks"] if c["CheckID"] == "api-http"] == ["critical"]
    status, _, body = agent.request("GET", "/v1/internal/ui/node/nope")
    assert (status, body) == (404, b"")


def test_services_summary_blocks_until_a_check_changes(agent: AgentProcess) -> None:
    _, headers, _ = agent.request("GET", "/v1/internal/ui/services")
    index = int(headers["X-Consul-Index"])
    answer: dict[str, Any] = {}

    def block() -> None:
        answer["status"], answer["headers"], answer["body"] = agent.request(
            "GET", f"/v1/internal/ui/services?index={index}&wait=10s"
        )

    waiter = threading.Thread(target=block)
    waiter.start()
    time.sleep(0.3)
    agent.put("/v1/catalog/register", {
        **NODES["n2"],
        "Check": {"CheckID": "api-http", "ServiceID": "api-1", "Status": "passing"},
    })  # fmt: skip
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert int(answer["headers"]["X-Consul-Index"]) > index
    assert b'"ChecksCritical":0' in answer["body"]


def test_another_datacenter_is_not_answered_from_this_one(agent: AgentProcess) -> None:
    """As Consul's, the UI's reads honour ``?dc``: a datacenter with no path is an error,
    not this datacenter's catalog under another name."""
    for path in ("/v1/internal/ui/services", "/v1/internal/ui/nodes", "/v1/internal/ui/node/n1"):
        status, _, body = agent.request("GET", f"{path}?dc=nowhere")
        assert (status, body) == (500, b"No path to datacenter"), path
        assert agent.request("GET", f"{path}?dc=dc1")[0] == 200


def test_services_summary_connect_fields(agent: AgentProcess) -> None:
    """As Consul's summarizeServices: a proxy makes its destination ConnectedWithProxy (and
    listed, with no instance of its own) and its checks count toward it too, once each;
    TransparentProxy only when every proxy is; ConnectNative from the instance."""
    m1, m2 = {"Node": "m1", "Address": "10.0.1.1"}, {"Node": "m2", "Address": "10.0.1.2"}
    registrations: list[dict[str, Any]] = [
        {**m1, "Check": {"CheckID": "serfHealth", "Name": "Serf", "Status": "passing"}},
        {**m1, "Service": {"ID": "pay-1", "Service": "pay", "Port": 80},
         "Check": {"CheckID": "pay-http", "ServiceID": "pay-1", "Status": "warning"}},
        {**m1, "Service": {"ID": "pay-proxy", "Service": "pay-sidecar-proxy", "Kind": "connect-proxy",
                           "Port": 21000, "Proxy": {"DestinationServiceName": "pay", "Mode": "transparent"}},
         "Check": {"CheckID": "pay-proxy-alive", "ServiceID": "pay-proxy", "Status": "critical"}},
        {**m2, "Service": {"ID": "ghost-proxy", "Service": "ghost-proxy", "Kind": "connect-proxy",
                           "Port": 21001, "Proxy": {"DestinationServiceName": "ghost"}},
         "Check": {"CheckID": "ghost-alive", "ServiceID": "ghost-proxy", "Status": "passing"}},
        {**m2, "Service": {"ID": "nat", "Service": "nat", "Port": 90, "Connect": {"Native": True}}},
    ]  # fmt: skip
    for body in registrations:
        agent.put("/v1/catalog/register", body)
    found = _by_name(agent.get("/v1/internal/ui/services"))

    def connect(name: str) -> tuple[bool, bool, bool, bool]:
        row = found[name]
        return (
            row["ConnectNative"],
            row["ConnectedWithProxy"],
            row["TransparentProxy"],
            row["ConnectedWithGateway"],
        )

    def tally(name: str) -> tuple[int, int, int, int]:
        row = found[name]
        return row["InstanceCount"], row["ChecksPassing"], row["ChecksWarning"], row["ChecksCritical"]

    assert (connect("pay"), tally("pay")) == ((False, True, True, False), (1, 1, 1, 1))
    assert (connect("pay-sidecar-proxy"), tally("pay-sidecar-proxy")) == (
        (False, False, False, False),
        (1, 1, 0, 1),
    )
    assert found["pay-sidecar-proxy"]["Kind"] == "connect-proxy"
    ghost = found["ghost"]
    assert (connect("ghost"), tally("ghost")) == ((False, True, False, False), (0, 1, 0, 0))
    assert (ghost["Nodes"], ghost["Datacenter"], ghost["Tags"], "Kind" in ghost) == (None, "", None, False)
    assert connect("nat") == (True, False, False, False)
    assert connect("api") == (False, False, False, False)
