"""A lean client agent: it replicates only its own node, the membership, the ACL tables and
the CA roots, and relays every registry request to a server's HTTP API (blocking queries
and delta streams included), failing over to the other server when one dies mid-request.

One etcd member, two server agents (``a-server``, ``b-server``, relayed to in that order),
one client agent joined to ``a-server``. The scenarios run in order.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dig import dig
from etcd_cluster import etcd_available, servers_and_client
from waypost.agent.lean import replica_scope
from waypost.state import schema
from waypost.store import wire
from waypost.store.remote import RemoteStore
from waypost.testing import AgentProcess, wait_for

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd-server is not installed"),
    pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed"),
]

CLIENT = "edge"


@dataclass
class Cluster:
    servers: list[AgentProcess]
    client: AgentProcess


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with servers_and_client(tmp_path_factory.mktemp("lean"), ("a-server", "b-server"), CLIENT) as (
        _,
        servers,
        client,
    ):
        yield Cluster(servers, client)


def _register_elsewhere(server: AgentProcess, node: str, service: str = "web") -> None:
    server.put(
        "/v1/catalog/register",
        {"Node": node, "Address": "192.0.2.10", "Service": {"Service": service, "Port": 80}},
    )


def _index(agent: AgentProcess, path: str, value: bytes) -> int:
    """The index of a read that shows the key at ``value``: a read relayed to the other
    server can briefly trail a write made on one (servers read their own copy)."""
    wait_for(lambda: agent.request("GET", f"{path}?raw")[2] == value, 10)
    return int(agent.request("GET", path)[1]["X-Consul-Index"])


def _get_json(agent: AgentProcess, path: str, timeout: float = 30) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, dict(resp.getheaders()), json.loads(body) if body else None
    finally:
        conn.close()


def test_1_the_replica_holds_only_its_scope(cluster: Cluster) -> None:
    """What the client agent's store is sent (its scope, read through a real server): its
    own node's rows and the cluster's tables, never another node's or the KV store; a
    scoped watch moves past changes outside the scope without sending them."""
    server = cluster.servers[0]
    cluster.client.put("/v1/agent/service/register", {"Name": "local-svc", "Port": 9})
    _register_elsewhere(server, "far-node")
    server.put("/v1/kv/not-for-clients", b"v")

    async def read() -> tuple[list[str], list[str]]:
        store = RemoteStore([server.server_address], scope=replica_scope(CLIENT))
        try:
            snapshot = await store.range("")
            watch = store.watch("", snapshot.revision + 1)
            server.put("/v1/kv/skipped-by-the-watch", b"v")
            cluster.client.put("/v1/agent/service/register", {"Name": "later-svc", "Port": 9})
            events: list[str] = []
            for _ in range(20):
                events += [ev.kv.key for ev in await asyncio.wait_for(anext(watch), 20)]
                if schema.SERVICES.key(CLIENT, "later-svc") in events:
                    break
            return [kv.key for kv in snapshot.kvs], events
        finally:
            await store.close()

    keys, events = asyncio.run(read())
    scope = replica_scope(CLIENT)
    assert keys
    assert all(wire.in_scope(key, scope) for key in keys)
    assert schema.SERVICES.key(CLIENT, "local-svc") in keys
    assert schema.NODES.key(CLIENT) in keys
    assert {schema.MEMBERS.key(name) for name in ("a-server", "b-server", CLIENT)} <= set(keys)
    assert not any(key.startswith((schema.KVS.prefix, schema.NODES.key("far-node"))) for key in keys)
    assert not any(key.startswith(schema.SERVICES.key("far-node", "")) for key in keys)
    assert schema.SERVICES.key(CLIENT, "later-svc") in events
    assert all(wire.in_scope(key, scope) for key in events)


def test_2_registry_reads_through_the_client_are_the_servers(cluster: Cluster) -> None:
    server, client = cluster.servers[0], cluster.client
    for path in ("/v1/catalog/nodes", "/v1/catalog/services", "/v1/health/service/web", "/v1/kv/?recurse"):
        assert client.get(path) == server.get(path), path
    assert client.request("GET", "/v1/kv/not-for-clients?raw")[2] == b"v"
    client.put("/v1/kv/written-through-the-client", b"w")
    assert server.request("GET", "/v1/kv/written-through-the-client?raw")[2] == b"w"
    # A session named by no node is the client's, as Consul's client agents fill it in.
    session = client.put("/v1/session/create", {"Name": "mine"})["ID"]
    assert server.get(f"/v1/session/info/{session}")[0]["Node"] == CLIENT
    # DNS for a service on another node, a node and a prepared query, read through a server.
    wait_for(lambda: dig(client, "web.service.consul") == ["192.0.2.10"], 20)
    assert dig(client, "far-node.node.consul") == ["192.0.2.10"]
    assert server.request("POST", "/v1/query", b'{"Name": "webq", "Service": {"Service": "web"}}')[0] == 200
    assert dig(client, "webq.query.consul") == ["192.0.2.10"]
    assert dig(client, "nothing-here.service.consul") == []


def test_3_a_blocking_query_through_the_client_wakes_on_a_server_write(cluster: Cluster) -> None:
    server, client = cluster.servers[1], cluster.client
    server.put("/v1/kv/blocked", b"1")
    index = _index(client, "/v1/kv/blocked", b"1")
    answer: list[tuple[int, dict[str, str], Any]] = []
    reader = threading.Thread(
        target=lambda: answer.append(_get_json(client, f"/v1/kv/blocked?index={index}&wait=20s"))
    )
    reader.start()
    try:
        time.sleep(0.5)  # let the query park on the server first
        server.put("/v1/kv/blocked", b"2")
    finally:
        reader.join(30)
    [(status, headers, body)] = answer
    assert status == 200
    assert int(headers["X-Consul-Index"]) > index
    assert body[0]["Value"] == "Mg=="  # base64 of "2"


def test_4_a_delta_stream_through_the_client_follows_the_servers(cluster: Cluster) -> None:
    server, client = cluster.servers[0], cluster.client
    conn = http.client.HTTPConnection("127.0.0.1", client.http_port, timeout=20)
    try:
        conn.request("GET", "/v1/stream/health/service/streamed")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type", "").startswith("text/event-stream")
        _register_elsewhere(server, "streamed-node", "streamed")
        seen = b""
        for _ in range(200):
            seen += resp.read1(65536)
            if b"streamed-node" in seen:
                break
        assert b"streamed-node" in seen
    finally:
        conn.close()


def test_5_an_alias_of_another_node_follows_it_through_a_server(cluster: Cluster) -> None:
    server, client = cluster.servers[0], cluster.client

    def target(status: str) -> None:
        server.put(
            "/v1/catalog/register",
            {
                "Node": "alias-target",
                "Address": "192.0.2.20",
                "Service": {"ID": "tgt", "Service": "tgt", "Port": 80},
                "Check": {"CheckID": "tgt-up", "Name": "up", "Status": status, "ServiceID": "tgt"},
            },
        )

    def alias_status() -> str:
        return str(client.get("/v1/agent/checks")["service:front"]["Status"])

    target("passing")
    check = {"AliasNode": "alias-target", "AliasService": "tgt"}
    client.put("/v1/agent/service/register", {"Name": "front", "Port": 8080, "Check": check})
    wait_for(lambda: alias_status() == "passing", 20)
    target("critical")
    wait_for(lambda: alias_status() == "critical", 20)


def test_6_cached_reads_are_answered_by_the_client_and_kept_fresh(cluster: Cluster) -> None:
    server, client = cluster.servers[0], cluster.client
    _register_elsewhere(server, "cached-1", "cachedsvc")
    path = "/v1/health/service/cachedsvc?cached"
    status, headers, first = _get_json(client, path)
    assert (status, headers["X-Cache"], headers.get("Age")) == (200, "MISS", None)
    status, headers, again = _get_json(client, path)
    assert (status, headers["X-Cache"], headers["Age"], again) == (200, "HIT", "0", first)
    index = int(headers["X-Consul-Index"])
    # The entry's background refresh sees a server-side change; a cached blocking read waits for it.
    _register_elsewhere(server, "cached-2", "cachedsvc")
    status, headers, later = _get_json(client, f"{path}&index={index}&wait=20s")
    assert headers["X-Cache"] in ("HIT", "MISS")  # a MISS if it waited for the refresh, as on Consul
    assert sorted(e["Node"]["Node"] for e in later) == ["cached-1", "cached-2"]
    # Other reads ignore ?cached, as Consul's agent does.
    assert "X-Cache" not in _get_json(client, "/v1/kv/blocked?cached")[1]
    # Simple caching around the relay: the client keeps the answer; ?cached with ?consistent refused.
    marks = [client.request("GET", "/v1/catalog/datacenters?cached")[1]["X-Cache"] for _ in range(2)]
    assert marks == ["MISS", "HIT"]
    status, _, body = client.request("GET", "/v1/query/none/execute?cached&consistent")
    assert (status, body) == (400, b"Cannot specify ?cached with ?consistent, conflicting semantics.")


def test_7_the_server_relayed_to_dies_mid_query_and_the_other_answers(cluster: Cluster) -> None:
    first, second = cluster.servers
    client = cluster.client
    second.put("/v1/kv/failover", b"1")
    index = _index(client, "/v1/kv/failover", b"1")
    answer: list[tuple[int, dict[str, str], Any]] = []
    path = f"/v1/kv/failover?index={index}&wait=15s"
    reader = threading.Thread(target=lambda: answer.append(_get_json(client, path)))
    reader.start()
    try:
        time.sleep(0.5)  # let the query reach the first server, which then dies under it
        first.kill()  # dies; a stopping server may first answer its parked queries
        second.put("/v1/kv/failover", b"2")
    finally:
        reader.join(40)
    [(status, headers, body)] = answer
    assert status == 200, body
    assert body[0]["Value"] == "Mg=="
    assert int(headers["X-Consul-Index"]) > index
    assert client.request("GET", "/v1/kv/failover?raw")[2] == b"2"
