"""Scale-out with the real thing: a 3-member etcd cluster, 2 server agents, 2 client agents.

The client agents start first, alone, and join once the servers are up; each is given
only one server and learns the other from the members, which test 3 relies on when it
kills the leader. The scenarios run in order against one cluster, each leaving it as the
next expects.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dig import dig
from etcd_cluster import EtcdCluster, etcd_available, etcd_cluster
from waypost.testing import AgentProcess, free_port, wait_for

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd-server is not installed"),
    pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed"),
]


CLIENT_JOINS = {"client-a": 1, "client-b": 2}
"""The one server each client is told about."""


@dataclass
class Deployment:
    etcd: EtcdCluster
    base: Path
    servers: list[AgentProcess] = field(default_factory=list)
    clients: list[AgentProcess] = field(default_factory=list)
    server_ports: dict[int, int] = field(default_factory=lambda: {1: free_port(), 2: free_port()})
    """Each server's agent-to-server port, chosen before any agent starts: clients are told
    theirs before the servers exist, and status/leader tells the servers apart by it."""

    def server(self, i: int) -> AgentProcess:
        args = [
            *("-server", "-store", self.etcd.url, "-bind", "127.0.0.1", "-node", f"server-{i}"),
            *("-data-dir", str(self.base / f"server-{i}")),
        ]
        return AgentProcess(args, server_port=self.server_ports[i], log_path=self.base / f"server-{i}.log")

    def client_args(self, name: str) -> list[str]:
        server = f"127.0.0.1:{self.server_ports[CLIENT_JOINS[name]]}"
        return [
            *("-bind", "127.0.0.1", "-node", name, "-data-dir", str(self.base / name)),
            *("-retry-interval", "1s", "-retry-join", server),
        ]

    @staticmethod
    def restart(agent: AgentProcess) -> AgentProcess:
        """The same agent again (same flags, ports, data directory and log), once it knows a
        leader: a client agent answers before it has rejoined."""
        agent.stop()
        agent.start(timeout=30)
        wait_for(lambda: agent.get("/v1/status/leader"), 30)
        return agent

    def leader(self) -> int:
        """Index in ``servers`` of the current leader."""
        address = str(self.servers[0].get("/v1/status/leader"))
        port = int(address.rsplit(":", 1)[1])
        return next(i for i, p in self.server_ports.items() if p == port) - 1


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("cluster")
    (base / "etcd").mkdir()
    with etcd_cluster(base / "etcd", members=3) as etcd:
        dep = Deployment(etcd, base)
        try:
            for name in CLIENT_JOINS:
                client = AgentProcess(
                    dep.client_args(name), log_path=base / f"{name}.log", wait_for_leader=False
                )
                dep.clients.append(client.start(30))
            for client in dep.clients:
                assert client.request("GET", "/v1/catalog/nodes")[2] == b"No known Consul servers"
            dep.servers = [dep.server(i).start(30) for i in (1, 2)]
            for client in dep.clients:
                wait_for(lambda client=client: client.get("/v1/status/leader"), 15)
            yield dep
        finally:
            for agent in dep.clients + dep.servers:
                agent.stop()


def test_1_service_on_client_a_is_seen_everywhere_over_http_and_dns(deployment: Deployment) -> None:
    a, b = deployment.clients
    s2 = deployment.servers[1]
    a.put("/v1/agent/service/register", {"Name": "web", "ID": "web-a", "Port": 8080, "Address": "127.0.0.10"})
    for agent in (s2, b):
        wait_for(lambda agent=agent: [e["Service"]["ID"] for e in agent.get("/v1/health/service/web?passing")]
                 == ["web-a"], 10)  # fmt: skip
        wait_for(lambda agent=agent: dig(agent, "web.service.consul") == ["127.0.0.10"], 10)
    members = {m["Name"]: m["Status"] for m in b.get("/v1/agent/members")}
    assert members == {"server-1": 1, "server-2": 1, "client-a": 1, "client-b": 1}
    assert len(s2.get("/v1/status/peers")) == 2


def test_2_losing_one_etcd_member_keeps_writes_and_reads(deployment: Deployment) -> None:
    deployment.etcd.members[0].kill()
    a, b = deployment.clients
    for i in range(20):
        assert a.put(f"/v1/kv/after-etcd-loss/{i}", str(i).encode()) is True
    wait_for(lambda: len(b.get("/v1/kv/after-etcd-loss/?recurse")) == 20, 10)
    deployment.etcd.members[0].start(deployment.etcd.initial_cluster())
    deployment.etcd.wait_healthy()


def test_3_leader_server_dies_and_another_takes_over(deployment: Deployment) -> None:
    leading = deployment.leader()
    old = deployment.servers[0].get("/v1/status/leader")
    deployment.servers[leading].kill()
    survivor = deployment.servers[1 - leading]
    wait_for(lambda: survivor.get("/v1/status/leader") not in ("", old), 15)
    a, b = deployment.clients
    a.put("/v1/agent/service/register", {"Name": "api", "ID": "api-a", "Port": 9090})
    b.put("/v1/agent/service/register", {"Name": "api", "ID": "api-b", "Port": 9091})
    wait_for(lambda: len(survivor.get("/v1/health/service/api?passing")) == 2, 10)
    deployment.restart(deployment.servers[leading])


def test_4_killed_client_turns_critical_and_leaves_dns(deployment: Deployment) -> None:
    b = deployment.clients[1]
    b.put("/v1/agent/service/register", {"Name": "web", "ID": "web-b", "Port": 8081, "Address": "127.0.0.11"})
    s1 = deployment.servers[0]
    wait_for(lambda: dig(s1, "web.service.consul") == ["127.0.0.10", "127.0.0.11"], 10)
    b.kill(signal.SIGKILL)
    wait_for(lambda: dig(s1, "web.service.consul") == ["127.0.0.10"], 15)
    serf = {c["CheckID"]: c["Status"] for c in s1.get("/v1/health/node/client-b")}
    assert serf["serfHealth"] == "critical"
    members = {m["Name"]: m["Status"] for m in s1.get("/v1/agent/members")}
    assert members["client-b"] == 4
    deployment.restart(b)
    wait_for(lambda: dig(s1, "web.service.consul") == ["127.0.0.10", "127.0.0.11"], 15)


def test_5_restarting_everything_loses_nothing_acknowledged(deployment: Deployment) -> None:
    a = deployment.clients[0]
    acked = {f"restart/{i}": f"v{i}" for i in range(50)}
    for key, value in acked.items():
        assert a.put(f"/v1/kv/{key}", value.encode()) is True
    for agent in deployment.clients + deployment.servers:
        agent.kill(signal.SIGKILL)
    for member in deployment.etcd.members:
        member.kill()
    for member in deployment.etcd.members:
        member.start(deployment.etcd.initial_cluster())
    deployment.etcd.wait_healthy()
    for agent in deployment.servers + deployment.clients:
        deployment.restart(agent)
    b = deployment.clients[1]
    got = {e["Key"]: base64.b64decode(e["Value"]).decode() for e in b.get("/v1/kv/restart/?recurse")}
    assert got == acked
    wait_for(lambda: len(b.get("/v1/health/service/web?passing")) == 2, 15)


def test_6_blocking_query_on_server_2_wakes_on_a_write_on_server_1(deployment: Deployment) -> None:
    """Woken by the write, not by its wait running out: the answer is the new value at a
    higher index. (How fast: bench/watch_bench.py.)"""
    s1, s2 = deployment.servers
    s1.put("/v1/kv/blocking/key", b"0")
    wait_for(lambda: s2.request("GET", "/v1/kv/blocking/key")[0] == 200, 5)
    for i in range(3):
        _, headers, _ = s2.request("GET", "/v1/kv/blocking/key")
        index = int(headers["X-Consul-Index"])
        woke: list[tuple[int, dict[str, str], bytes]] = []
        path = f"/v1/kv/blocking/key?index={index}&wait=60s"
        t = threading.Thread(target=lambda path=path, woke=woke: woke.append(s2.request("GET", path)))
        t.start()
        time.sleep(0.3)
        s1.put("/v1/kv/blocking/key", str(i + 1).encode())
        t.join(30)
        [(status, got, body)] = woke
        assert status == 200
        assert int(got["X-Consul-Index"]) > index
        assert base64.b64decode(json.loads(body)[0]["Value"]) == str(i + 1).encode()


def test_7_graceful_leave_and_force_leave(deployment: Deployment) -> None:
    s1 = deployment.servers[0]
    a, b = deployment.clients
    a.put("/v1/agent/leave")
    assert a.proc is not None
    assert a.proc.wait(timeout=15) == 0
    wait_for(lambda: {m["Name"]: m["Status"] for m in s1.get("/v1/agent/members")}["client-a"] == 3, 10)
    assert s1.get("/v1/catalog/node/client-a") is None
    b.kill(signal.SIGKILL)
    wait_for(lambda: {m["Name"]: m["Status"] for m in s1.get("/v1/agent/members")}["client-b"] == 4, 15)
    s1.put("/v1/agent/force-leave/client-b")
    assert {m["Name"]: m["Status"] for m in s1.get("/v1/agent/members")}["client-b"] == 3
    assert s1.get("/v1/catalog/node/client-b") is None
