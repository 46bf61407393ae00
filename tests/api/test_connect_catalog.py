"""The mesh's catalog reads against a real agent: a service's sidecars and native instances
(catalog and health, ``?passing``), gateways and ingress (none without config entries), and
the default discovery chain."""

from __future__ import annotations

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
