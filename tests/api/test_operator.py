"""/v1/operator on real agents: a dev agent alone, and two servers sharing a 3-member etcd."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import consul
import pytest

from etcd_cluster import EtcdCluster, etcd_available, etcd_cluster
from waypost.testing import AgentProcess

AUTOPILOT_DEFAULTS = {
    "CleanupDeadServers": True,
    "LastContactThreshold": "200ms",
    "MaxTrailingLogs": 250,
    "MinQuorum": 0,
    "ServerStabilizationTime": "10s",
    "RedundancyZoneTag": "",
    "DisableUpgradeMigration": False,
    "UpgradeVersionTag": "",
}


def wait_for(predicate: Any, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {limit}s")


def test_dev_agent_is_the_only_voter_and_leads(dev_agent: AgentProcess) -> None:
    config = dev_agent.get("/v1/operator/raft/configuration")
    node_id = dev_agent.get("/v1/agent/self")["Config"]["NodeID"]
    assert set(config) == {"Servers", "Index"}
    assert config["Index"] > 0
    [server] = config["Servers"]
    assert server == {
        "ID": node_id,
        "Node": "test-node",
        "Address": server["Address"],
        "Leader": True,
        "ProtocolVersion": "3",
        "Voter": True,
        "LastIndex": server["LastIndex"],
    }
    assert server["Address"].startswith("127.0.0.1:")
    assert server["LastIndex"] >= config["Index"]
    stale = dev_agent.get("/v1/operator/raft/configuration?stale")
    assert [{**s, "LastIndex": 0} for s in stale["Servers"]] == [{**server, "LastIndex": 0}]


def test_autopilot_health_and_configuration(dev_agent: AgentProcess) -> None:
    status, _, body = dev_agent.request("GET", "/v1/operator/autopilot/health")
    health = json.loads(body)
    assert status == 200
    assert (health["Healthy"], health["FailureTolerance"]) == (True, 0)
    [server] = health["Servers"]
    assert (server["Name"], server["SerfStatus"], server["Leader"], server["Healthy"]) == (
        "test-node",
        "alive",
        True,
        True,
    )
    assert set(server) == {
        "ID", "Name", "Address", "SerfStatus", "Version", "Leader", "LastContact",
        "LastTerm", "LastIndex", "Healthy", "Voter", "StableSince",
    }  # fmt: skip
    assert server["StableSince"].endswith("Z")
    conf = dev_agent.get("/v1/operator/autopilot/configuration")
    assert {k: conf[k] for k in AUTOPILOT_DEFAULTS} == AUTOPILOT_DEFAULTS


def test_conflicting_consistency_flags_are_refused(dev_agent: AgentProcess) -> None:
    status, _, body = dev_agent.request("GET", "/v1/operator/raft/configuration?stale&consistent")
    assert (status, body) == (400, b"Cannot specify ?stale with ?consistent, conflicting semantics.")


def test_py_consul_operator_calls(dev_agent: AgentProcess) -> None:
    c = consul.Consul(host="127.0.0.1", port=dev_agent.http_port)
    assert [s["Node"] for s in c.operator.raft_config()["Servers"]] == ["test-node"]
    assert c.operator.autopilot_health()["Healthy"] is True
    assert c.operator.autopilot_configuration()["MaxTrailingLogs"] == 250


@dataclass
class Pair:
    etcd: EtcdCluster
    servers: list[AgentProcess]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if not etcd_available():
        pytest.skip("etcd is not installed")
    base = tmp_path_factory.mktemp("operator")
    (base / "etcd").mkdir()
    conf = base / "liveness.json"
    conf.write_text(json.dumps({"liveness": {"heartbeat_interval": "200ms", "failure_timeout": "2s"}}))
    with etcd_cluster(base / "etcd", members=3) as etcd:
        servers: list[AgentProcess] = []
        try:
            for name in ("op-1", "op-2"):
                args = ["-server", "-store", etcd.url, "-bind", "127.0.0.1", "-node", name]
                args += ["-data-dir", str(base / name), "-config-file", str(conf)]
                servers.append(AgentProcess(args, log_path=base / f"{name}.log").start(30))
            yield Pair(etcd, servers)
        finally:
            for server in servers:
                server.stop()


def _configuration(agent: AgentProcess) -> dict[str, Any]:
    result: dict[str, Any] = agent.get("/v1/operator/raft/configuration")
    return result


@pytest.mark.etcd
def test_servers_and_etcd_members(pair: Pair) -> None:
    first, second = pair.servers

    def settled() -> bool:
        """Both servers listed, one leader, and both agents agreeing on that (each learns
        of the other's member record from the store's watch, so not at the same instant)."""
        servers = _configuration(first)["Servers"]
        return (
            [s["Node"] for s in servers] == ["op-1", "op-2"]
            and sum(s["Leader"] for s in servers) == 1
            and _configuration(second)["Servers"] == servers
        )

    wait_for(settled)
    config = _configuration(first)
    etcd = config["Etcd"]
    assert sorted(m["Name"] for m in etcd) == ["m0", "m1", "m2"]
    assert all(m["Healthy"] and not m["Learner"] and m["RaftIndex"] > 0 for m in etcd)
    assert sum(m["Leader"] for m in etcd) == 1

    pair.etcd.members[2].kill()
    down = {m["Name"]: m for m in _configuration(first)["Etcd"]}
    assert down["m2"]["Healthy"] is False
    assert down["m2"]["Error"]
    assert down["m0"]["Healthy"] is True


@pytest.mark.etcd
def test_a_failed_server_makes_autopilot_unhealthy(pair: Pair) -> None:
    status, _, body = pair.servers[0].request("GET", "/v1/operator/autopilot/health")
    assert status == 200
    assert json.loads(body)["FailureTolerance"] == 0
    pair.servers[1].kill(signal.SIGKILL)

    def unhealthy() -> bool:
        return pair.servers[0].request("GET", "/v1/operator/autopilot/health")[0] == 429

    wait_for(unhealthy)
    health = json.loads(pair.servers[0].request("GET", "/v1/operator/autopilot/health")[2])
    assert health["Healthy"] is False
    states = {s["Name"]: (s["SerfStatus"], s["Healthy"]) for s in health["Servers"]}
    assert states == {"op-1": ("alive", True), "op-2": ("failed", False)}
