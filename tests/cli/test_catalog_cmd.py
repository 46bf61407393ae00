from __future__ import annotations

from cli_support import Runner

from waypost.testing import AgentProcess


def test_datacenters(waypost: Runner) -> None:
    assert waypost("catalog", "datacenters").out == "dc1\n"
    assert waypost("catalog", "datacenters", "extra").err == "Too many arguments (expected 0, got 1)\n"


def test_nodes(waypost: Runner, dev_agent: AgentProcess) -> None:
    node_id = dev_agent.get("/v1/catalog/nodes")[0]["ID"]
    r = waypost("catalog", "nodes")
    assert r.code == 0
    header, row = r.out.splitlines()
    assert header.split() == ["Node", "ID", "Address", "DC"]
    assert row.split() == ["test-node", node_id.split("-")[0], "127.0.0.1", "dc1"]
    detailed = waypost("catalog", "nodes", "-detailed").out
    assert node_id in detailed
    assert "TaggedAddresses" in detailed
    assert "lan=127.0.0.1" in detailed


def test_nodes_filtered_by_service_and_meta(waypost: Runner, dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "catweb", "Port": 80, "Tags": ["b", "a"]})
    assert waypost("catalog", "nodes", "-service=catweb").out.splitlines()[1].startswith("test-node")
    r = waypost("catalog", "nodes", "-service", "nosuchservice")
    assert (r.code, r.out) == (0, "")
    assert r.err == "No nodes match the given query - try expanding your search.\n"
    assert waypost("catalog", "nodes", "-node-meta", "nosuch=meta").out == ""


def test_services(waypost: Runner, dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "catweb", "Port": 80, "Tags": ["b", "a"]})
    names = waypost("catalog", "services").out.splitlines()
    assert "catweb" in names
    assert "consul" in names
    tagged = waypost("catalog", "services", "-tags").out.splitlines()
    assert "catweb      a,b" in tagged
    by_node = waypost("catalog", "services", "-node=test-node").out.splitlines()
    assert "catweb" in by_node


def test_catalog_group_help(waypost: Runner) -> None:
    assert waypost("catalog").code == 1
    r = waypost("catalog", "--help")
    assert r.code == 0
    assert "datacenters" in r.out
    for sub in ("datacenters", "nodes", "services"):
        assert waypost("catalog", sub, "-h").out.startswith(f"Usage: waypost catalog {sub}")
