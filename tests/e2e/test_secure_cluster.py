"""A default-deny cluster over TLS with verified certificates, end to end: one etcd member
serving clients over TLS with ``--client-cert-auth``, two server agents on it, one client
agent joined to the first server; HTTPS only (the HTTP port off) with client certificates
required, the agent-to-server port with verify_server_hostname. Every certificate comes
from ``waypost tls``.

The client agent's own agent token is a node identity, not the servers' agent token: the
servers' store port admits it by its verified ``client.dc1.consul`` certificate. On it:
the client agent joining, syncing its services and serving reads that way, the route
sweep against the client agent and a server, the store port refusing all but an agent's
certificate, the agent token or a management token, the relay marker passing the
per-client connection cap only with an agent's certificate, a deleted policy or token refused on
every agent within a second, and a token made with ExpirationTTL "1m" when the cluster started refused on
every agent from its ExpirationTime on, then reaped by the leader. The expiry test is
last: the others run while the token's minute passes.
"""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from acl_kit import ACL_CONFIG, ROOT, Caller
from acl_sweep import Case, check_case, seed, sweep_cases
from etcd_cluster import EtcdTLS, etcd_available, etcd_cluster
from tls_certs import Certs, make_certs
from waypost.testing import AgentProcess, wait_for

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd-server is not installed"),
]

AGENT_TOKEN = "3c0e6a43-51b7-4d0f-8f6e-0a2d9c4b7e15"
"""The servers' agent token; the client agent has a node identity token of its own."""
CLIENT = "client-1"
SERVERS = ("server-1", "server-2")
KEY_READ = 'key "app/k" { policy = "read" }'


def _tls(certs: Certs, kind: str) -> str:
    cert, key = certs.pair(kind)
    return (
        f'tls {{ defaults {{ ca_file = "{certs.ca}" cert_file = "{cert}" key_file = "{key}" '
        "verify_incoming = true verify_outgoing = true } "
        "internal_rpc { verify_server_hostname = true } }"
    )


@dataclass
class SecureCluster:
    certs: Certs
    servers: list[AgentProcess]
    client: AgentProcess
    client_token: str
    """The client agent's agent token: a node identity for it, unknown to the servers' config."""
    expiring: dict[str, Any]
    """The token made with ExpirationTTL "1m" at start-up (AccessorID, SecretID, ExpirationTime)."""

    @property
    def agents(self) -> list[AgentProcess]:
        return [*self.servers, self.client]


def _https_status(port: int, context: ssl.SSLContext, path: str, token: str | None = None) -> int:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        conn.request("GET", path, headers={"X-Consul-Token": token} if token else {})
        return conn.getresponse().status
    finally:
        conn.close()


def _refused_everywhere(cluster: SecureCluster, token: str) -> bool:
    return all(Caller(agent)("GET", "/v1/kv/app/k", token=token)[0] == 403 for agent in cluster.agents)


def _works_everywhere(cluster: SecureCluster, token: str) -> bool:
    return all(Caller(agent)("GET", "/v1/kv/app/k", token=token)[0] == 200 for agent in cluster.agents)


def _agent(tmp: Path, certs: Certs, name: str, args: list[str], token: str = AGENT_TOKEN) -> AgentProcess:
    config = tmp / f"{name}.hcl"
    config.write_text(ACL_CONFIG.format(root=ROOT, tokens=f'agent = "{token}"'))
    kind = "server" if name.startswith("server") else "client"
    return AgentProcess(
        [
            *("-bind", "127.0.0.1", "-node", name, "-data-dir", str(tmp / name)),
            *("-config-file", str(config), "-hcl", _tls(certs, kind), "-hcl", "ports { http = -1 }"),
            *args,
        ],
        tls=certs.client_context("cli"),
        log_path=tmp / f"{name}.log",
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    tmp = tmp_path_factory.mktemp("secure-cluster")
    certs = make_certs(tmp / "certs")
    cert, key = certs.pair("server")
    (tmp / "etcd").mkdir()
    with etcd_cluster(tmp / "etcd", tls=EtcdTLS(certs.ca, cert, key)) as etcd:
        [endpoint] = etcd.endpoints
        store = ["-server", "-store", f"etcds://{endpoint}"]
        servers = [_agent(tmp, certs, name, store) for name in SERVERS]
        try:
            for server in servers:
                server.start(timeout=30)
            root = Caller(servers[0])
            root.ok("PUT", "/v1/acl/policy", {"Name": "expiring-read", "Rules": KEY_READ})
            expiring = root.ok(
                "PUT", "/v1/acl/token", {"Policies": [{"Name": "expiring-read"}], "ExpirationTTL": "1m"}
            )
            identity = {"NodeIdentities": [{"NodeName": CLIENT, "Datacenter": "dc1"}]}
            client_token = root.ok("PUT", "/v1/acl/token", identity)["SecretID"]
            join = ["-retry-join", servers[0].server_address, "-retry-interval", "1s"]
            client = _agent(tmp, certs, CLIENT, join, client_token)
            with client:
                client_api = Caller(client)
                client_api.ok("PUT", "/v1/kv/app/k", "v")
                yield SecureCluster(certs, servers, client, client_token, expiring)
        finally:
            for server in servers:
                server.stop()


def test_only_https_with_a_client_certificate_is_served(cluster: SecureCluster) -> None:
    for agent in cluster.agents:
        with pytest.raises(ConnectionRefusedError):
            http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=5).connect()
        with pytest.raises((ssl.SSLError, ConnectionResetError)):  # no client certificate
            _https_status(agent.https_port, cluster.certs.client_context(None), "/v1/status/leader")
        assert (
            _https_status(agent.https_port, cluster.certs.client_context("cli"), "/v1/status/leader") == 200
        )


def test_the_client_agent_reaches_both_servers_over_verified_tls(cluster: SecureCluster) -> None:
    # The client's copy of the membership follows the servers' a moment after its join.
    wait_for(
        lambda: (
            {m["Name"] for m in Caller(cluster.client).ok("GET", "/v1/agent/members")} == {*SERVERS, CLIENT}
        )
    )
    wait_for(lambda: _works_everywhere(cluster, cluster.expiring["SecretID"]))


def test_a_client_agent_with_its_own_node_identity_token_syncs_and_serves_reads(
    cluster: SecureCluster,
) -> None:
    assert cluster.client_token != AGENT_TOKEN
    client, server = Caller(cluster.client), Caller(cluster.servers[1])
    service = {"Name": "own-token-web", "Port": 8080, "Check": {"TTL": "30s"}}
    client.ok("PUT", "/v1/agent/service/register", service)
    client.ok("PUT", "/v1/agent/check/pass/service:own-token-web")

    def synced() -> bool:
        found = server.ok("GET", "/v1/health/service/own-token-web?passing")
        return [entry["Node"]["Node"] for entry in found] == [CLIENT]

    wait_for(synced, 15)
    [instance] = client.ok("GET", "/v1/catalog/service/own-token-web")
    assert (instance["Node"], instance["ServicePort"]) == (CLIENT, 8080)
    assert client.ok("GET", "/v1/kv/app/k?raw") == "v"


SWEPT = {"client": CLIENT, "server": SERVERS[1]}
"""The sweep runs against the client agent, then the second server."""
SWEEP = [(role, case) for role, node in SWEPT.items() for case in sweep_cases(node)]


@pytest.fixture(scope="module")
def seeded(cluster: SecureCluster) -> dict[str, dict[str, str]]:
    """Per role, seeded when its first case runs."""
    return {}


def _swept(cluster: SecureCluster, role: str) -> AgentProcess:
    return cluster.client if role == "client" else cluster.servers[1]


@pytest.mark.parametrize(("role", "case"), SWEEP, ids=[f"{role}-{case.id}" for role, case in SWEEP])
def test_sweep(cluster: SecureCluster, seeded: dict[str, dict[str, str]], role: str, case: Case) -> None:
    call = Caller(_swept(cluster, role))
    if role not in seeded:
        seeded[role] = seed(call, SWEPT[role])
    check_case(call, case, seeded[role])


def test_the_store_port_takes_only_the_agent_token(cluster: SecureCluster) -> None:
    """Routes only servers serve: the agent-to-server API on their server port, over TLS
    checked against the name servers' certificates carry. An agent's certificate
    (``client.dc1.consul``, ``server.dc1.consul``) is admitted without a token; a ``-cli``
    certificate is an operator's, which needs the agent token or a management token, as
    does the client agent's own node identity token, an ordinary token to the store port."""
    ordinary = Caller(cluster.servers[0]).token_for(KEY_READ, "store-port-ordinary")
    tokens = (None, ordinary, cluster.client_token, AGENT_TOKEN, ROOT)
    expected = {"cli": [403, 403, 403, 200, 200], "client": [200] * 5, "server": [200] * 5}
    for kind, statuses in expected.items():
        ctx = cluster.certs.client_context(kind)
        for index, server in enumerate(cluster.servers):
            got = [
                _https_status(server.server_port, ctx, "/v1/internal/store/revision", token)
                for token in tokens
            ]
            assert got == statuses, (kind, index)


def test_a_deleted_policy_is_refused_on_every_agent_within_a_second(cluster: SecureCluster) -> None:
    first = Caller(cluster.servers[0])
    token = first.token_for(KEY_READ, "deleted-policy")
    wait_for(lambda: _works_everywhere(cluster, token), 10)
    policy = first.ok("GET", "/v1/acl/policy/name/deleted-policy")
    first.ok("DELETE", f"/v1/acl/policy/{policy['ID']}")
    wait_for(lambda: _refused_everywhere(cluster, token), 1.0, step=0.02)


def test_a_deleted_token_is_refused_on_every_agent_within_a_second(cluster: SecureCluster) -> None:
    first = Caller(cluster.servers[0])
    token = first.token_for(KEY_READ, "deleted-token")
    wait_for(lambda: _works_everywhere(cluster, token), 10)
    accessor = first.ok("GET", "/v1/acl/token/self", token=token)["AccessorID"]
    first.ok("DELETE", f"/v1/acl/token/{accessor}")
    wait_for(lambda: _refused_everywhere(cluster, token), 1.0, step=0.02)
    assert Caller(cluster.client)("GET", "/v1/kv/app/k", token=token)[1] == "ACL not found"


def test_the_relay_marker_without_an_agent_certificate_is_capped(cluster: SecureCluster) -> None:
    """127.0.0.1 is every member's address here, so only the certificate tells the client
    agent's relays (``client.dc1.consul``) from a ``cli`` caller sending the marker."""
    server = cluster.servers[0]
    marked = {"X-Waypost-Forwarded": "client"}
    held: list[http.client.HTTPSConnection] = []
    try:
        statuses = []
        for _ in range(201):  # the default http_max_conns_per_client, and one more
            conn = http.client.HTTPSConnection(
                "127.0.0.1", server.https_port, timeout=10, context=cluster.certs.client_context("cli")
            )
            held.append(conn)
            conn.request("GET", "/v1/status/leader", headers=marked)
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
            if resp.status == 429:
                break
        # Capped at 200 from this address; the other agents here (all on 127.0.0.1) may hold
        # a slot or two for a moment: a connection counts until its first request is a relay.
        assert statuses[-1] == 429
        assert statuses[:-1] == [200] * (len(statuses) - 1)
        assert len(statuses) >= 195
        assert Caller(cluster.client)("GET", "/v1/kv/app/k", token=ROOT)[0] == 200  # relayed past the cap
    finally:
        for conn in held:
            conn.close()


def test_an_expiring_token_stops_at_its_expiration_time_and_is_reaped(cluster: SecureCluster) -> None:
    """Last in the module: the token's minute has mostly passed while the others ran (it
    worked on every agent in the second test). Should they have run past its expiry, it
    must be refused at once."""
    expiring = cluster.expiring
    secret, accessor = expiring["SecretID"], expiring["AccessorID"]
    expires = datetime.fromisoformat(expiring["ExpirationTime"]).timestamp()
    assert expires - time.time() <= 60
    while time.time() < expires - 1.0:
        time.sleep(min(1.0, expires - 1.0 - time.time()))
    if time.time() < expires - 0.5:
        assert _works_everywhere(cluster, secret)
    while time.time() < expires:
        time.sleep(max(0.0, expires - time.time()))
    wait_for(lambda: _refused_everywhere(cluster, secret), 1.0, step=0.02)
    root = Caller(cluster.servers[1])
    wait_for(lambda: accessor not in {t["AccessorID"] for t in root.ok("GET", "/v1/acl/tokens")}, 10)
    assert root("GET", f"/v1/acl/token/{accessor}", token=ROOT)[:2] == (403, "ACL not found")
