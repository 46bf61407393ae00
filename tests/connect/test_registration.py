"""A ``Connect.SidecarService`` block: Consul's defaults for the sidecar it registers, its
port from the configured range, and its life tied to its parent's, on a real agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from waypost.agent.definitions import DefinitionError, parse_service
from waypost.connect.registration import sidecar_definition, sidecar_port
from waypost.state.model import NodeService
from waypost.testing import AgentProcess

RANGE = (21000, 21255)


def _parent(**fields: Any) -> NodeService:
    return parse_service({"Name": "web", "ID": "web-1", "Port": 8080, **fields}).service


def test_an_empty_sidecar_block_gets_consuls_defaults() -> None:
    parent = _parent(Tags=["v1"], Meta={"team": "a"})
    defn = sidecar_definition(parent, {}, datacenter="dc1", ports=RANGE, local=[parent])
    svc = defn.service
    assert (svc.ID, svc.Service, svc.Kind, svc.Port) == (
        "web-1-sidecar-proxy",
        "web-sidecar-proxy",
        "connect-proxy",
        21000,
    )
    assert (svc.Tags, svc.Meta) == (["v1"], {"team": "a"})
    assert svc.Proxy is not None
    proxy = svc.Proxy
    assert (proxy.DestinationServiceName, proxy.DestinationServiceID) == ("web", "web-1")
    assert (proxy.LocalServiceAddress, proxy.LocalServicePort) == ("127.0.0.1", 8080)
    assert defn.checks == [
        {"Name": "Connect Sidecar Listening", "TCP": "127.0.0.1:21000", "Interval": "10s"},
        {"Name": "Connect Sidecar Aliasing web-1", "AliasService": "web-1"},
    ]


def test_what_the_sidecar_block_names_wins_over_the_defaults() -> None:
    parent = _parent(Address="10.0.0.5")
    body = {
        "port": 20000,
        "tags": ["proxy"],
        "proxy": {
            "local_service_port": 9090,
            "upstreams": [{"destination_name": "db", "local_bind_port": 9191}],
        },
        "checks": [{"name": "mine", "ttl": "10s"}],
    }
    defn = sidecar_definition(parent, body, datacenter="dc1", ports=RANGE, local=[parent])
    svc = defn.service
    assert (svc.Port, svc.Tags, svc.Address) == (20000, ["proxy"], "10.0.0.5")
    assert svc.Proxy is not None
    assert svc.Proxy.LocalServicePort == 9090
    assert [u.DestinationName for u in svc.Proxy.Upstreams] == ["db"]
    assert defn.checks == [{"name": "mine", "ttl": "10s"}]


def test_the_tcp_check_of_an_ipv6_sidecar_brackets_the_address() -> None:
    parent = _parent(Address="2001:db8::5")
    defn = sidecar_definition(parent, {}, datacenter="dc1", ports=RANGE, local=[])
    assert defn.checks[0]["TCP"] == "[2001:db8::5]:21000"


def test_ports_are_taken_lowest_first_and_kept_across_re_registration() -> None:
    taken = [NodeService(ID="a", Service="a", Port=21000), NodeService(ID="b", Service="b", Port=21002)]
    assert sidecar_port("web-sidecar-proxy", RANGE, taken) == 21001
    mine = NodeService(ID="web-sidecar-proxy", Service="x", Port=21002)
    assert sidecar_port("web-sidecar-proxy", RANGE, [taken[0], mine]) == 21002


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ((21000, 21000), "none left in the configured range [21000, 21000]"),
        ((-1, 21255), "auto-assignment disabled in config"),
    ],
)
def test_no_free_port_is_refused_in_consuls_words(ports: tuple[int, int], message: str) -> None:
    taken = [NodeService(ID="a", Service="a", Port=21000)]
    with pytest.raises(DefinitionError, match=r"^Invalid SidecarService: no port provided") as exc:
        sidecar_definition(_parent(), {}, datacenter="dc1", ports=ports, local=taken)
    assert message in str(exc.value)


def _register(agent: AgentProcess, body: dict[str, Any]) -> tuple[int, bytes]:
    status, _, out = agent.request("PUT", "/v1/agent/service/register", json.dumps(body).encode())
    return status, out


def test_the_agent_registers_and_removes_the_sidecar_with_its_parent(dev_agent: AgentProcess) -> None:
    assert _register(dev_agent, {"Name": "shop", "Port": 7000, "Connect": {"SidecarService": {}}})[0] == 200
    listed = dev_agent.get("/v1/agent/services")
    sidecar = listed["shop-sidecar-proxy"]
    assert sidecar["Kind"] == "connect-proxy"
    assert sidecar["Port"] >= 21000
    assert sidecar["Proxy"] == {
        "DestinationServiceName": "shop",
        "DestinationServiceID": "shop",
        "LocalServiceAddress": "127.0.0.1",
        "LocalServicePort": 7000,
        "MeshGateway": {},
        "Expose": {},
    }
    assert "Proxy" not in listed["shop"]
    assert "Connect" not in listed["shop"]
    checks = dev_agent.get("/v1/agent/checks")
    assert checks["service:shop-sidecar-proxy:2"]["Definition"] == {"AliasService": "shop"}
    (row,) = dev_agent.get("/v1/catalog/service/shop-sidecar-proxy")
    assert row["ServiceProxy"]["DestinationServiceName"] == "shop"
    assert row["ServiceProxy"]["Mode"] == ""
    assert dev_agent.request("PUT", "/v1/agent/service/deregister/shop")[0] == 200
    assert "shop-sidecar-proxy" not in dev_agent.get("/v1/agent/services")
    assert dev_agent.get("/v1/catalog/service/shop-sidecar-proxy") == []


def test_an_invalid_proxy_block_is_a_400_naming_the_field(dev_agent: AgentProcess) -> None:
    status, body = _register(
        dev_agent, {"Name": "bad", "Kind": "connect-proxy", "Port": 1, "Proxy": {"LocalServicePort": "x"}}
    )
    assert status == 400
    assert b"Proxy" in body
    status, body = _register(
        dev_agent, {"Name": "bad", "Connect": {"SidecarService": {"Proxy": {"Mode": "odd"}}}}
    )
    assert (status, body.decode()) == (
        400,
        "Invalid SidecarService: Validation failed: 1 error occurred:\n"
        "\t* Proxy.Mode: invalid proxy mode: odd\n\n",
    )
    assert "bad" not in dev_agent.get("/v1/agent/services")


def test_a_config_file_service_takes_the_same_blocks(tmp_path: Path) -> None:
    config = tmp_path / "svc.hcl"
    config.write_text(
        'service {\n  name = "api"\n  port = 9000\n  connect {\n    native = true\n  }\n}\n'
        'service {\n  name = "gw"\n  kind = "mesh-gateway"\n  port = 8443\n}\n'
        'service {\n  name = "pay"\n  port = 9100\n'
        "  connect {\n    sidecar_service {\n      port = 20100\n"
        '      proxy {\n        upstreams {\n          destination_name = "db"\n'
        "          local_bind_port = 9191\n        }\n      }\n    }\n  }\n}\n"
    )
    with AgentProcess(["-dev", "-config-file", str(config)], log_path=tmp_path / "agent.log") as agent:
        listed = agent.get("/v1/agent/services")
        assert listed["api"]["Connect"] == {"Native": True}
        assert listed["gw"]["Proxy"] == {"MeshGateway": {}, "Expose": {}}
        assert listed["pay-sidecar-proxy"]["Port"] == 20100
        assert listed["pay-sidecar-proxy"]["Proxy"]["Upstreams"] == [
            {"DestinationType": "service", "DestinationName": "db", "LocalBindPort": 9191, "MeshGateway": {}}
        ]
        (row,) = agent.get("/v1/catalog/service/api")
        assert row["ServiceConnect"] == {"Native": True}
