"""What clients and probes hit first: the index page, coordinates, agent stats, WAN members,
and a check refused for a service the agent does not have."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import consul
import pytest

from waypost.api.status import UI_DISABLED
from waypost.testing import AgentProcess

ORIGIN = {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}


def _root(agent: AgentProcess, method: str = "GET") -> tuple[http.client.HTTPResponse, bytes]:
    """Raw, so the redirect is seen rather than followed."""
    conn = http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=10)
    conn.request(method, "/")
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def _same_head(get: http.client.HTTPResponse, head: http.client.HTTPResponse) -> None:
    """HEAD answers as Go's net/http does for Consul's "/": the GET's status and headers."""
    assert head.status == get.status
    assert {k: v for k, v in head.getheaders() if k != "Date"} == {
        k: v for k, v in get.getheaders() if k != "Date"
    }


def test_index_redirects_to_the_ui_when_it_is_enabled(dev_agent: AgentProcess) -> None:
    resp, _ = _root(dev_agent)
    assert resp.status == 301
    assert resp.getheader("Location") == "/ui/"
    head, body = _root(dev_agent, "HEAD")
    _same_head(resp, head)
    assert body == b""


def test_index_names_the_agent_when_the_ui_is_disabled(tmp_path: Path) -> None:
    with AgentProcess(["-dev", "-ui=false"], log_path=tmp_path / "agent.log") as agent:
        status, headers, body = agent.request("GET", "/")
        get, _ = _root(agent)
        head, head_body = _root(agent, "HEAD")
    assert (status, body.decode()) == (200, UI_DISABLED)
    _same_head(get, head)
    assert (head.getheader("Content-Length"), head_body) == (str(len(UI_DISABLED)), b"")
    assert headers["Content-Type"].startswith("text/plain")
    assert UI_DISABLED == (
        "Consul Agent: UI disabled. "
        "To enable, set ui_config.enabled=true in the agent configuration and restart."
    )


def test_coordinate_update_is_stored_and_read_back(dev_agent: AgentProcess) -> None:
    client = consul.Consul(port=dev_agent.http_port)
    coord = {"Vec": [0.25, -0.5, 0, 0, 0, 0, 0, 0.125], "Error": 0.4, "Adjustment": 0.001, "Height": 0.0002}
    assert client.coordinate.update("test-node", coord) is True
    _, stored = client.coordinate.node("test-node")
    assert stored == [{"Node": "test-node", "Segment": "", "Coord": coord}]
    assert {"Node": "test-node", "Segment": "", "Coord": coord} in client.coordinate.nodes()[1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Node": "test-node", "Coord": {"Vec": [0.1, 0.2, 0.3], "Error": 1.5}}, b"incompatible coordinate"),
        ({"Node": "test-node"}, b"invalid coordinate"),
        ({"Node": "test-node", "Coord": {"Vec": ["near"] * 8}}, b"Request decode failed: Coord.Vec"),
        ({"Node": 7, "Coord": ORIGIN}, b"Request decode failed: Node"),
        ([1, 2], b"Request decode failed"),
    ],
)
def test_coordinate_update_refuses_bad_coordinates(
    dev_agent: AgentProcess, body: object, message: bytes
) -> None:
    before = dev_agent.get("/v1/coordinate/node/test-node")
    status, _, answer = dev_agent.request("PUT", "/v1/coordinate/update", json.dumps(body).encode())
    assert status == 400
    assert answer.startswith(message)
    assert dev_agent.get("/v1/coordinate/node/test-node") == before


def test_coordinate_for_a_node_not_in_the_catalog_is_dropped(dev_agent: AgentProcess) -> None:
    client = consul.Consul(port=dev_agent.http_port)
    assert client.coordinate.update("ghost-node", ORIGIN) is True
    status, _, _ = dev_agent.request("GET", "/v1/coordinate/node/ghost-node")
    assert status == 404
    assert "ghost-node" not in {c["Node"] for c in client.coordinate.nodes()[1]}


def test_wan_coordinates_list_servers_only(dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/catalog/register", {"Node": "wan-external", "Address": "10.9.9.9"})
    dev_agent.put("/v1/coordinate/update", {"Node": "wan-external", "Coord": ORIGIN})
    assert "wan-external" in {c["Node"] for c in dev_agent.get("/v1/coordinate/nodes")}
    [area] = dev_agent.get("/v1/coordinate/datacenters")
    assert (area["Datacenter"], area["AreaID"]) == ("dc1", "wan")
    assert [c["Node"] for c in area["Coordinates"]] == ["test-node"]
    dev_agent.put("/v1/catalog/deregister", {"Node": "wan-external"})


def test_agent_self_stats(dev_agent: AgentProcess) -> None:
    client = consul.Consul(port=dev_agent.http_port)
    stats = client.agent.self()["Stats"]
    assert {"agent", "build", "consul", "runtime"} <= set(stats)
    assert all(isinstance(v, str) for section in stats.values() for v in section.values())
    assert stats["consul"] == {
        "server": "true",
        "leader": "true",
        "leader_addr": client.status.leader(),
        "bootstrap": stats["consul"]["bootstrap"],
        "known_datacenters": "1",
        "acl": "disabled",
    }
    assert stats["consul"]["bootstrap"] in ("true", "false")
    assert {"checks", "services", "check_ttls", "check_monitors"} <= set(stats["agent"])
    assert {"os", "arch", "version", "cpu_count", "max_procs", "goroutines"} <= set(stats["runtime"])
    assert int(stats["runtime"]["cpu_count"]) >= 1


def test_wan_members_are_the_servers_named_with_their_datacenter(dev_agent: AgentProcess) -> None:
    client = consul.Consul(port=dev_agent.http_port)
    lan = client.agent.members()
    wan = client.agent.members(wan=True)
    servers = [m for m in lan if m["Tags"].get("role") == "consul"]
    assert [m["Name"] for m in wan] == [f"{m['Name']}.dc1" for m in servers] == ["test-node.dc1"]
    assert all(m["Status"] == 1 for m in wan)
    status, _, body = dev_agent.request("GET", "/v1/agent/members?wan=1&segment=alpha")
    assert (status, body) == (400, b"Cannot provide a segment with wan=true")


def test_check_for_an_unknown_service_is_404_and_registers_nothing(dev_agent: AgentProcess) -> None:
    client = consul.Consul(port=dev_agent.http_port)
    assert client.agent.check.register("orphan", consul.Check.ttl("10s"), service_id="ghost") is False
    body = json.dumps({"Name": "orphan", "TTL": "10s", "ServiceID": "ghost"}).encode()
    status, _, answer = dev_agent.request("PUT", "/v1/agent/check/register", body)
    assert (status, answer) == (404, b'ServiceID "ghost" does not exist')
    assert "orphan" not in client.agent.checks()
    assert "orphan" not in {c["CheckID"] for c in client.health.node("test-node")[1]}


def test_a_client_agent_is_in_no_wan_pool(tmp_path: Path) -> None:
    server_args = [
        *("-server", "-bootstrap-expect", "1", "-data-dir", str(tmp_path / "s")),
        *("-bind", "127.0.0.1", "-node", "hub"),
    ]
    with AgentProcess(server_args, log_path=tmp_path / "s.log") as server:
        client_args = [
            *("-data-dir", str(tmp_path / "c"), "-bind", "127.0.0.1"),
            *("-node", "edge", "-retry-join", server.server_address),
        ]
        with AgentProcess(client_args, log_path=tmp_path / "c.log") as client:
            assert consul.Consul(port=client.http_port).agent.members(wan=True) is None
            assert [m["Name"] for m in server.get("/v1/agent/members?wan=1")] == ["hub.dc1"]
            stats = client.get("/v1/agent/self")["Stats"]["consul"]
            assert stats == {"server": "false", "known_servers": "1", "acl": "disabled"}
            status, _, _ = client.request("GET", "/v1/agent/members?wan=1&filter=Name%20%3D%3D")
            assert status == 400


def test_coordinates_go_with_their_node(dev_agent: AgentProcess) -> None:
    client = consul.Consul(port=dev_agent.http_port)
    coord = {**ORIGIN, "Vec": [0.5] * 8}
    assert client.catalog.register("passing-node", "10.0.0.7")
    assert client.coordinate.update("passing-node", coord) is True
    assert client.coordinate.node("passing-node")[1][0]["Coord"] == coord
    assert client.catalog.deregister("passing-node")
    assert client.catalog.register("passing-node", "10.0.0.8")
    assert client.coordinate.node("passing-node")[1][0]["Coord"] == ORIGIN
