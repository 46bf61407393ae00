"""``waypost operator``: Consul's list-peers table and autopilot get-config, from the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Runner, run_cli

from etcd_cluster import etcd_available, etcd_cluster
from waypost.testing import AgentProcess


def test_list_peers_table(waypost: Runner, dev_agent: AgentProcess) -> None:
    r = waypost("operator", "raft", "list-peers")
    assert (r.code, r.err) == (0, "")
    header, row = r.out.splitlines()
    assert header.split("  ")[0] == "Node"
    assert [c.strip() for c in header.split("  ") if c.strip()] == [
        "Node", "ID", "Address", "State", "Voter", "RaftProtocol", "Commit Index", "Trails Leader By",
    ]  # fmt: skip
    node_id = dev_agent.get("/v1/agent/self")["Config"]["NodeID"]
    cells = row.split()
    assert cells[:2] == ["test-node", node_id]
    assert cells[3:6] == ["leader", "true", "3"]
    assert cells[-1] == "_"
    assert int(cells[6]) > 0


def test_list_peers_errors(waypost: Runner) -> None:
    r = waypost("operator", "raft", "list-peers", "-http-addr=127.0.0.1:1")
    assert r.code == 1
    assert r.err.startswith("Error getting peers: Failed to retrieve raft configuration: ")
    assert waypost("operator", "raft", "list-peers", "extra").code == 1
    assert waypost("operator").code == 1
    assert waypost("operator", "raft", "-h").code == 0


def test_autopilot_get_config(waypost: Runner) -> None:
    r = waypost("operator", "autopilot", "get-config")
    assert r.code == 0
    assert r.out == (
        "CleanupDeadServers = true\nLastContactThreshold = 200ms\nMaxTrailingLogs = 250\nMinQuorum = 0\n"
        'ServerStabilizationTime = 10s\nRedundancyZoneTag = ""\nDisableUpgradeMigration = false\n'
        'UpgradeVersionTag = ""\n'
    )


@pytest.mark.etcd
@pytest.mark.skipif(not etcd_available(), reason="etcd is not installed")
def test_list_peers_adds_the_etcd_members(tmp_path: Path) -> None:
    (tmp_path / "etcd").mkdir()
    with etcd_cluster(tmp_path / "etcd") as etcd:
        args = ["-server", "-store", etcd.url, "-bind", "127.0.0.1", "-node", "peer-1"]
        with AgentProcess([*args, "-data-dir", str(tmp_path / "data")], log_path=tmp_path / "a.log") as agent:
            r = run_cli(agent, "operator", "raft", "list-peers")
    assert r.code == 0, r.err
    servers, etcd_part = r.out.split("\netcd members:\n")
    assert servers.splitlines()[1].split()[:1] == ["peer-1"]
    header, member = etcd_part.splitlines()
    assert header.startswith("Node")
    cells = member.split()
    assert (cells[0], cells[2], cells[3], cells[4], cells[5]) == (
        "m0",
        f"127.0.0.1:{etcd.members[0].peer_port}",
        "leader",
        "true",
        "etcd",
    )
    assert cells[-1] == "_"
