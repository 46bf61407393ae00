"""The mesh's catalog reads against a real agent: a service's sidecars and native instances
(catalog and health, ``?passing``), gateways and ingress (none without config entries), and
the default discovery chain."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from waypost.testing import AgentProcess, wait_for


def test_connect_reads_list_the_services_proxies_and_native_instances(dev_agent: AgentProcess) -> None:
    dev_agent.put(
        "/v1/agent/service/register", {"Name": "pay", "Port": 7100, "Connect": {"SidecarService": {}}}
    )
    dev_agent.put(
        "/v1/agent/service/register",
        {"Name": "pay", "ID": "pay-native", "Port": 7101, "Connect": {"Native": True}},
    )
    dev_agent.put("/v1/agent/service/register", {"Name": "plain", "Port": 7200})
    rows = dev_agent.get("/v1/catalog/connect/pay")
    assert [(r["ServiceID"], r["ServiceKind"]) for r in rows] == [
        ("pay-native", ""),
        ("pay-sidecar-proxy", "connect-proxy"),
    ]
    assert rows[0]["ServiceConnect"] == {"Native": True}
    assert rows[1]["ServiceProxy"]["DestinationServiceName"] == "pay"
    health = dev_agent.get("/v1/health/connect/pay")
    assert [h["Service"]["ID"] for h in health] == ["pay-native", "pay-sidecar-proxy"]
    assert [c["Name"] for c in health[1]["Checks"]][-2:] == [
        "Connect Sidecar Listening",
        "Connect Sidecar Aliasing pay",
    ]
    # Nothing listens on the sidecar's port, so its TCP check fails and ?passing drops it.
    wait_for(
        lambda: (
            [h["Service"]["ID"] for h in dev_agent.get("/v1/health/connect/pay?passing")] == ["pay-native"]
        )
    )
    assert dev_agent.get("/v1/catalog/connect/plain") == []
    assert dev_agent.get("/v1/health/connect/pay?filter=Service.Kind%20%3D%3D%20%22connect-proxy%22")[0][
        "Service"
    ]["ID"] == ("pay-sidecar-proxy")


def test_gateways_and_ingress_are_empty_without_config_entries(dev_agent: AgentProcess) -> None:
    assert dev_agent.get("/v1/health/ingress/pay") == []
    assert dev_agent.get("/v1/catalog/gateway-services/gw") == []


def test_the_discovery_chain_is_the_default_one(dev_agent: AgentProcess) -> None:
    chain = dev_agent.get("/v1/discovery-chain/pay")["Chain"]
    target = "pay.default.default.dc1"
    assert (chain["ServiceName"], chain["Default"], chain["Protocol"]) == ("pay", True, "tcp")
    assert chain["StartNode"] == f"resolver:{target}"
    assert chain["Nodes"][f"resolver:{target}"]["Resolver"] == {
        "ConnectTimeout": "5s",
        "Default": True,
        "Target": target,
    }
    assert chain["Targets"][target]["SNI"].startswith("pay.default.dc1.internal.")


def test_a_catalog_registration_keeps_the_proxy_block(dev_agent: AgentProcess) -> None:
    proxy = {
        "DestinationServiceName": "ledger",
        "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9000}],
    }
    service = {"Service": "ledger-proxy", "Kind": "connect-proxy", "Port": 21500, "Proxy": proxy}
    dev_agent.put("/v1/catalog/register", {"Node": "ext-mesh", "Address": "10.1.0.1", "Service": service})
    (row,) = dev_agent.get("/v1/catalog/connect/ledger")
    assert row["ServiceProxy"]["Upstreams"] == [
        {
            "DestinationType": "service",
            "DestinationName": "db",
            "Datacenter": "",
            "LocalBindPort": 9000,
            "MeshGateway": {},
        }
    ]
    status, _, body = dev_agent.request(
        "PUT",
        "/v1/catalog/register",
        b'{"Node": "ext-mesh", "Address": "10.1.0.1", "Service": {"Service": "p", "Kind": "connect-proxy"}}',
    )
    assert status == 400
    assert b"Proxy.DestinationServiceName must be non-empty" in body


def _register_proxy(agent: AgentProcess, node: str, sid: str, destination: str) -> None:
    proxy = {"ID": sid, "Service": f"{destination}-proxy", "Kind": "connect-proxy", "Port": 21000}
    proxy["Proxy"] = {"DestinationServiceName": destination}
    agent.put("/v1/catalog/register", {"Node": node, "Address": "10.2.0.1", "Service": proxy})


def _blocking(agent: AgentProcess, path: str, out: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        _, headers, body = agent.request("GET", path)
        out.update(at=time.monotonic(), index=int(headers["X-Consul-Index"]), body=json.loads(body))

    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_connect_read_blocks_on_its_own_proxies_only(dev_agent: AgentProcess) -> None:
    """Another service's proxy, its checks and a plain instance of the service leave the
    read's index alone, so a blocking read runs to its wait; its own proxies wake it."""
    _register_proxy(dev_agent, "mesh-a", "bx-1", "bx")
    _register_proxy(dev_agent, "mesh-b", "by-1", "by")
    path = "/v1/health/connect/bx"
    _, headers, _ = dev_agent.request("GET", path)
    index = int(headers["X-Consul-Index"])

    quiet: dict[str, Any] = {}
    started = time.monotonic()
    t = _blocking(dev_agent, f"{path}?index={index}&wait=1s", quiet)
    _register_proxy(dev_agent, "mesh-b", "by-2", "by")
    check = {
        "Node": "mesh-b",
        "CheckID": "by-1-alive",
        "Name": "alive",
        "ServiceID": "by-1",
        "Status": "passing",
    }
    dev_agent.put("/v1/catalog/register", {"Node": "mesh-b", "Address": "10.2.0.1", "Check": check})
    dev_agent.put(
        "/v1/catalog/register", {"Node": "mesh-c", "Address": "10.2.0.3", "Service": {"Service": "bx"}}
    )
    t.join(10)
    assert quiet["index"] == index
    assert quiet["at"] - started >= 1.0
    assert [e["Service"]["ID"] for e in quiet["body"]] == ["bx-1"]

    woken: dict[str, Any] = {}
    t = _blocking(dev_agent, f"{path}?index={index}&wait=30s", woken)
    time.sleep(0.2)
    _register_proxy(dev_agent, "mesh-b", "bx-2", "bx")
    t.join(10)
    assert woken["index"] > index
    assert [e["Service"]["ID"] for e in woken["body"]] == ["bx-1", "bx-2"]

    gone: dict[str, Any] = {}
    t = _blocking(dev_agent, f"/v1/catalog/connect/bx?index={woken['index']}&wait=30s", gone)
    time.sleep(0.2)
    dev_agent.put("/v1/catalog/deregister", {"Node": "mesh-a"})
    t.join(10)
    assert gone["index"] > woken["index"]
    assert [r["ServiceID"] for r in gone["body"]] == ["bx-2"]
