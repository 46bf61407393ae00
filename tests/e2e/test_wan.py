"""Two datacenters on loopback, each with its own etcd, two servers and a client agent,
federated over the WAN by one ``retry_join_wan`` address.

The scenarios run in order against one deployment, each leaving it as the next expects:
federation forms (every server learns every other), ``?dc=`` reads and writes cross in
both directions from the client agents, a blocking query on a remote service wakes on
the remote change, DNS answers for the other datacenter (asked of a server or of a
client agent), and when every server of one
datacenter stops the other keeps serving, reports them failed and answers "No path to
datacenter" for it, until they restart and federation comes back on its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dig import dig
from etcd_cluster import EtcdCluster, etcd_available, etcd_cluster
from waypost.testing import AgentProcess, wait_for

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd-server is not installed"),
    pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed"),
]

FAST_WAN = 'gossip_wan {\n probe_interval = "200ms"\n probe_timeout = "1s"\n suspicion_mult = 3\n}'
ALIVE, FAILED = 1, 4


@dataclass
class Datacenter:
    name: str
    etcd: EtcdCluster
    base: Path
    servers: list[AgentProcess] = field(default_factory=list)
    client: AgentProcess | None = None

    def server(self, i: int, join_wan: str | None) -> AgentProcess:
        args = [
            *("-server", "-store", self.etcd.url, "-bind", "127.0.0.1", "-node", f"{self.name}-s{i}"),
            *("-datacenter", self.name, "-data-dir", str(self.base / f"s{i}"), "-hcl", FAST_WAN),
            *(("-retry-join-wan", join_wan, "-retry-interval-wan", "1s") if join_wan else ()),
        ]
        return AgentProcess(args, log_path=self.base / f"s{i}.log")

    def start_client(self) -> AgentProcess:
        args = [
            *("-bind", "127.0.0.1", "-node", f"{self.name}-c", "-datacenter", self.name),
            *("-data-dir", str(self.base / "c"), "-retry-interval", "1s", "-hcl", FAST_WAN),
            *("-retry-join", self.servers[0].server_address),
        ]
        self.client = AgentProcess(args, log_path=self.base / "c.log", wait_for_leader=False).start(30)
        wait_for(lambda: self.client is not None and self.client.get("/v1/status/leader"), 30)
        return self.client

    @property
    def agent(self) -> AgentProcess:
        assert self.client is not None
        return self.client


def wan_status(agent: AgentProcess) -> dict[str, int]:
    return {m["Name"]: m["Status"] for m in agent.get("/v1/agent/members?wan=1")}


def waypost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "waypost", *args], capture_output=True, text=True, timeout=30
    )


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Datacenter, Datacenter]]:
    base = tmp_path_factory.mktemp("wan")
    for name in ("dc1", "dc2"):
        (base / name / "etcd").mkdir(parents=True)
    with (
        etcd_cluster(base / "dc1" / "etcd", members=1) as etcd1,
        etcd_cluster(base / "dc2" / "etcd", members=1) as etcd2,
    ):
        dc1, dc2 = Datacenter("dc1", etcd1, base / "dc1"), Datacenter("dc2", etcd2, base / "dc2")
        try:
            dc1.servers = [dc1.server(i, None).start(30) for i in (1, 2)]
            dc2.servers = [
                dc2.server(i, dc1.servers[0].address if i == 1 else None).start(30) for i in (1, 2)
            ]
            dc1.start_client()
            dc2.start_client()
            yield dc1, dc2
        finally:
            for agent in [dc.client for dc in (dc1, dc2) if dc.client] + dc1.servers + dc2.servers:
                agent.stop()


def test_1_one_wan_join_federates_every_server_of_both_datacenters(
    dcs: tuple[Datacenter, Datacenter],
) -> None:
    dc1, dc2 = dcs
    everyone = {"dc1-s1.dc1", "dc1-s2.dc1", "dc2-s1.dc2", "dc2-s2.dc2"}
    for server in dc1.servers + dc2.servers:
        wait_for(lambda server=server: wan_status(server) == dict.fromkeys(everyone, ALIVE), 20)
    assert dc1.agent.get("/v1/catalog/datacenters") == ["dc1", "dc2"]
    assert dc2.agent.get("/v1/catalog/datacenters") == ["dc2", "dc1"]
    assert dc1.agent.get("/v1/agent/members?wan=1") is None  # a client agent is in no WAN pool
    cli = waypost("members", "-wan", f"-http-addr={dc2.servers[1].address}")
    assert cli.returncode == 0, cli.stderr
    assert sorted(line.split()[0] for line in cli.stdout.splitlines()[1:]) == sorted(everyone)
    cli = waypost("catalog", "datacenters", f"-http-addr={dc1.agent.address}")
    assert cli.stdout.split() == ["dc1", "dc2"]
    cli = waypost("rtt", "-wan", f"-http-addr={dc1.servers[0].address}", "dc1-s1.dc1", "dc2-s2.dc2")
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith("Estimated dc1-s1.dc1 <-> dc2-s2.dc2 rtt: "), cli.stdout


def test_2_reads_and_writes_cross_in_both_directions(dcs: tuple[Datacenter, Datacenter]) -> None:
    dc1, dc2 = dcs
    dc1.agent.put("/v1/kv/written-from-dc1?dc=dc2", b"to dc2")
    dc2.agent.put("/v1/kv/written-from-dc2?dc=dc1", b"to dc1")
    wait_for(lambda: dc2.servers[1].request("GET", "/v1/kv/written-from-dc1?raw")[2] == b"to dc2", 5)
    wait_for(lambda: dc1.servers[1].request("GET", "/v1/kv/written-from-dc2?raw")[2] == b"to dc1", 5)
    assert dc1.agent.request("GET", "/v1/kv/written-from-dc1?raw")[0] == 404  # each keeps its own
    dc2.agent.put("/v1/agent/service/register", {"Name": "web", "Port": 8080})
    rows = dc1.agent.get("/v1/health/service/web?dc=dc2&passing")
    assert [(r["Node"]["Node"], r["Node"]["Datacenter"]) for r in rows] == [("dc2-c", "dc2")]
    session = dc1.agent.put("/v1/session/create?dc=dc2", {"Node": "dc2-c", "Checks": []})["ID"]
    wait_for(lambda: [s["ID"] for s in dc2.agent.get("/v1/session/list")] == [session], 5)
    status, headers, _ = dc1.agent.request("GET", "/v1/catalog/nodes?dc=dc2")
    assert status == 200
    assert int(headers["X-Consul-Index"]) > 0


def test_3_a_blocking_query_on_a_remote_service_wakes_on_the_remote_change(
    dcs: tuple[Datacenter, Datacenter],
) -> None:
    dc1, dc2 = dcs
    _, headers, _ = dc1.agent.request("GET", "/v1/health/service/api?dc=dc2")
    index = int(headers["X-Consul-Index"])
    answer: dict[str, object] = {}

    def block() -> None:
        status, hdrs, body = dc1.agent.request("GET", f"/v1/health/service/api?dc=dc2&index={index}&wait=20s")
        answer.update(status=status, index=int(hdrs["X-Consul-Index"]), rows=json.loads(body))

    waiter = threading.Thread(target=block)
    waiter.start()
    time.sleep(0.5)
    assert waiter.is_alive(), "the blocking query answered before the change"
    dc2.agent.put("/v1/agent/service/register", {"Name": "api", "Port": 9090})
    waiter.join(15)
    assert not waiter.is_alive()
    assert answer["status"] == 200
    assert int(str(answer["index"])) > index
    assert [r["Service"]["Service"] for r in answer["rows"]] == ["api"]  # type: ignore[attr-defined]


def test_4_dns_answers_for_the_other_datacenter(dcs: tuple[Datacenter, Datacenter]) -> None:
    dc1, dc2 = dcs
    assert dig(dc1.servers[0], "web.service.dc2.consul", "SRV") == ["1 1 8080 dc2-c.node.dc2.consul."]
    assert dig(dc1.servers[1], "dc2-c.node.dc2.consul", "A") == ["127.0.0.1"]
    assert dig(dc2.servers[0], "dc1-s1.node.dc1.consul", "A") == ["127.0.0.1"]
    assert dig(dc1.servers[0], "web.service.dc9.consul", "A") == []
    wait_for(
        lambda: dig(dc1.agent, "web.service.dc2.consul", "SRV") == ["1 1 8080 dc2-c.node.dc2.consul."], 10
    )
    assert dig(dc2.agent, "dc1-c.node.dc1.consul", "A") == ["127.0.0.1"]


def test_5_a_datacenter_whose_servers_all_stop_is_failed_then_restored_by_restarting_them(
    dcs: tuple[Datacenter, Datacenter],
) -> None:
    dc1, dc2 = dcs
    for server in dc2.servers:
        server.stop()
    gone = {"dc2-s1.dc2": FAILED, "dc2-s2.dc2": FAILED}
    wait_for(lambda: gone.items() <= wan_status(dc1.servers[1]).items(), 15)
    status, _, body = dc1.agent.request("GET", "/v1/kv/written-from-dc1?dc=dc2")
    assert (status, body) == (500, b"No path to datacenter")
    assert dc1.agent.request("GET", "/v1/kv/written-from-dc2?raw")[2] == b"to dc1"  # dc1 keeps serving
    for server in dc2.servers:
        server.start(30)
    wait_for(lambda: wan_status(dc1.servers[0])["dc2-s2.dc2"] == ALIVE, 15)
    wait_for(lambda: dc1.agent.request("GET", "/v1/kv/written-from-dc1?dc=dc2&raw")[2] == b"to dc2", 15)
    wait_for(lambda: wan_status(dc2.servers[1]).get("dc1-s1.dc1") == ALIVE, 15)
