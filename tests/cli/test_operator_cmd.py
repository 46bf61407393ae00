"""``waypost operator``: Consul's list-peers table and autopilot get-config, from the real CLI."""

from __future__ import annotations

from cli_support import Runner

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
