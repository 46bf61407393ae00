"""A client agent's reads (HTTP health and catalog, DNS) follow the servers: they converge
after the server it reads through dies, after servers restart, and after etcd compacted the
history the client would resume from, and no answer is older than the index it claims.

One etcd member, two server agents, one client agent joined to server 1 only (it learns
server 2 from the members). Services live on external nodes registered through the servers,
so every change the client shows came to it from a server. The scenarios run in order.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dig import dig
from etcd_cluster import EtcdCluster, etcd_available, servers_and_client
from waypost.agent.lean_dns import FRESH
from waypost.testing import AgentProcess, wait_for

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd-server is not installed"),
    pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed"),
]


@dataclass
class Cluster:
    etcd: EtcdCluster
    servers: list[AgentProcess]
    client: AgentProcess

    def live_server(self) -> AgentProcess:
        return next(s for s in self.servers if s.proc is not None and s.proc.poll() is None)

    def register(self, node: str, address: str, status: str = "passing") -> int:
        """An instance of ``web`` on its own external node; the index the write landed at."""
        server = self.live_server()
        server.put(
            "/v1/catalog/register",
            {
                "Node": node,
                "Address": address,
                "Service": {"ID": "web", "Service": "web", "Port": 80},
                "Check": {"CheckID": "alive", "Name": "alive", "Status": status, "ServiceID": "web"},
            },
        )
        return int(server.request("GET", "/v1/health/service/web")[1]["X-Consul-Index"])

    def deregister(self, node: str) -> int:
        server = self.live_server()
        server.put("/v1/catalog/deregister", {"Node": node})
        return int(server.request("GET", "/v1/health/service/web")[1]["X-Consul-Index"])

    def restart(self, agent: AgentProcess) -> None:
        agent.stop()
        agent.start(timeout=30)


def _passing(agent: AgentProcess, query: str = "") -> list[str]:
    return sorted(e["Node"]["Address"] for e in agent.get(f"/v1/health/service/web?passing{query}"))


def _from_views(agent: AgentProcess) -> dict[str, float]:
    metrics = agent.get("/v1/agent/metrics")
    found = {m["Name"]: m["Value"] for m in metrics["Gauges"]}
    found.update((m["Name"], m["Count"]) for m in metrics["Counters"])
    return {k: found[k] for k in ("waypost.client.views", "waypost.client.view_reads")}


def _converged(cluster: Cluster, want: list[str]) -> None:
    """The client's HTTP and DNS answers all equal ``want`` (addresses of passing instances):
    a plain read (relayed to a server), a blocking one and DNS (both from its view)."""
    client = cluster.client
    wait_for(lambda: _passing(client) == want, 20)
    wait_for(lambda: _passing(client, "&index=1") == want, 20)
    wait_for(lambda: dig(client, "web.service.consul") == want, 20)
    catalog = sorted(e["Address"] for e in client.get("/v1/catalog/service/web"))
    assert set(want) <= set(catalog)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    names = ("server-1", "server-2")
    with servers_and_client(tmp_path_factory.mktemp("reads"), names, "reader") as (etcd, servers, client):
        yield Cluster(etcd, servers, client)


def test_1_reads_follow_writes_made_on_the_servers(cluster: Cluster) -> None:
    cluster.register("n1", "127.0.1.1")
    cluster.register("n2", "127.0.1.2")
    cluster.register("n3", "127.0.1.3", status="critical")
    _converged(cluster, ["127.0.1.1", "127.0.1.2"])
    assert _from_views(cluster.client)["waypost.client.views"] >= 1
    assert dig(cluster.client, "2.1.0.127.in-addr.arpa", "PTR") == ["n2.node.dc1.consul."]


def test_1b_the_client_answers_from_its_views_while_no_server_answers(cluster: Cluster) -> None:
    """Frozen servers answer nothing: blocking reads and DNS still get the view's answer."""
    client = cluster.client
    _converged(cluster, ["127.0.1.1", "127.0.1.2"])
    before = _from_views(client)["waypost.client.view_reads"]
    for server in cluster.servers:
        assert server.proc is not None
        os.killpg(server.proc.pid, signal.SIGSTOP)
    try:
        assert _passing(client, "&index=1") == ["127.0.1.1", "127.0.1.2"]
        assert _from_views(client)["waypost.client.view_reads"] > before
        # Past the client's short DNS cache, a name read from a server would have to ask
        # one again (and wait for the frozen servers); one kept by a view does not.
        time.sleep(FRESH + 0.5)
        assert dig(client, "web.service.consul") == ["127.0.1.1", "127.0.1.2"]
    finally:
        for server in cluster.servers:
            assert server.proc is not None
            os.killpg(server.proc.pid, signal.SIGCONT)


def test_2_no_answer_is_older_than_the_index_it_claims(cluster: Cluster) -> None:
    """Each blocking read on the client answers with an index; the answer holds every write
    made at or before that index, however the writes and the reads interleave."""
    client = cluster.client
    _, headers, _ = client.request("GET", "/v1/health/service/web")
    index = int(headers["X-Consul-Index"])
    history: list[tuple[int, list[str]]] = []
    live = {"127.0.1.1", "127.0.1.2"}
    for i in range(8):
        address = f"127.0.2.{i}"
        if i % 3 == 2:
            node = f"flip-{i - 1}"
            live.discard(f"127.0.2.{i - 1}")
            history.append((cluster.deregister(node), sorted(live)))
        else:
            live.add(address)
            history.append((cluster.register(f"flip-{i}", address), sorted(live)))
        status, got, body = client.request("GET", f"/v1/health/service/web?passing&index={index}&wait=20s")
        assert status == 200
        answered = int(got["X-Consul-Index"])
        shown = sorted(e["Node"]["Address"] for e in json.loads(body))
        due = [want for written, want in history if written <= answered]
        if due:
            assert shown == due[-1], (answered, history)
        index = answered
    _converged(cluster, sorted(live))
    for address in live - {"127.0.1.1", "127.0.1.2"}:
        cluster.deregister(f"flip-{address.rsplit('.', 1)[1]}")
    _converged(cluster, ["127.0.1.1", "127.0.1.2"])


def test_3_the_server_the_client_reads_through_dies(cluster: Cluster) -> None:
    first = cluster.servers[0]
    first.kill(signal.SIGKILL)
    cluster.register("n4", "127.0.1.4")
    cluster.register("n1", "127.0.1.1", status="critical")
    _converged(cluster, ["127.0.1.2", "127.0.1.4"])
    first.start(timeout=30)


def test_4_servers_restart_one_after_the_other(cluster: Cluster) -> None:
    for server in cluster.servers:
        cluster.restart(server)
        wait_for(lambda server=server: server.get("/v1/status/leader"), 30)
    cluster.register("n1", "127.0.1.1")
    _converged(cluster, ["127.0.1.1", "127.0.1.2", "127.0.1.4"])


def _etcd_call(cluster: Cluster, path: str, body: dict[str, object]) -> dict[str, object]:
    url = f"{cluster.etcd.members[0].client_url}/v3/{path}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def test_5_history_the_client_would_resume_from_was_compacted(cluster: Cluster) -> None:
    """The client is frozen while instances change, etcd compacts past its position and both
    servers restart (their own recent history gone), so it can only re-read everything:
    changes and deletions made meanwhile show, nothing deleted stays."""
    client = cluster.client
    assert client.proc is not None
    os.killpg(client.proc.pid, signal.SIGSTOP)
    try:
        cluster.register("n5", "127.0.1.5")
        cluster.deregister("n2")
        cluster.register("n4", "127.0.1.4", status="critical")
        for i in range(20):
            cluster.live_server().put(f"/v1/kv/churn/{i}", b"x")
        header = _etcd_call(cluster, "kv/range", {"key": base64.b64encode(b"x").decode()})["header"]
        revision = int(header["revision"])  # type: ignore[index]
        _etcd_call(cluster, "kv/compaction", {"revision": str(revision), "physical": True})
        for server in cluster.servers:
            cluster.restart(server)
            wait_for(lambda server=server: server.get("/v1/status/leader"), 30)
    finally:
        os.killpg(client.proc.pid, signal.SIGCONT)
    _converged(cluster, ["127.0.1.1", "127.0.1.5"])
    assert "127.0.1.2" not in [e["Address"] for e in client.get("/v1/catalog/service/web")]
    keys = client.get("/v1/kv/churn/?keys")
    assert len(keys) == 20


def test_6_a_blocking_read_on_the_client_wakes_on_a_server_write(cluster: Cluster) -> None:
    client = cluster.client
    _, headers, _ = client.request("GET", "/v1/health/service/web?passing")
    index = int(headers["X-Consul-Index"])
    woke: list[tuple[int, dict[str, str], bytes]] = []
    path = f"/v1/health/service/web?passing&index={index}&wait=60s"
    reader = threading.Thread(target=lambda: woke.append(client.request("GET", path)))
    reader.start()
    cluster.register("n6", "127.0.1.6")
    reader.join(30)
    [(status, got, body)] = woke
    assert status == 200
    assert int(got["X-Consul-Index"]) > index
    assert "127.0.1.6" in [e["Node"]["Address"] for e in json.loads(body)]
