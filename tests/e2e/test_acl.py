"""ACLs across a cluster: a client agent reaches the server's store API only with the agent
token, and its anti-entropy then registers its services; without it the join is refused."""

from __future__ import annotations

from pathlib import Path

from acl_kit import ROOT, Caller, start_acl_agent
from waypost.testing import AgentProcess
from waypost.testing.waiting import wait_for

AGENT_TOKEN = "5b2d7c0e-8a1f-4c3e-9d6b-2f4a1e7c9b30"
RECOVERY = "0c9a7e51-3f42-4b8d-a6e0-d17b25c4f8a9"
"""The client agents' default token: the agent recovery token resolves without a server,
so the agent's own endpoints answer before it has joined."""


def _client(tmp: Path, name: str, server: AgentProcess, agent_token: str) -> AgentProcess:
    config = tmp / f"{name}.hcl"
    config.write_text(
        'acl {\n enabled = true\n default_policy = "deny"\n tokens {\n'
        f'  agent = "{agent_token}"\n  agent_recovery = "{RECOVERY}"\n  default = "{RECOVERY}"\n }}\n}}\n'
    )
    args = [
        *("-data-dir", str(tmp / name), "-bind", "127.0.0.1", "-node", name),
        *("-config-file", str(config), "-retry-join", server.server_address),
    ]
    return AgentProcess(args, log_path=tmp / f"{name}.log", wait_for_leader=False)


def test_a_client_agent_needs_the_agent_token_for_the_store_api(tmp_path: Path) -> None:
    with start_acl_agent(tmp_path, f'agent = "{AGENT_TOKEN}"') as server:
        call = Caller(server)
        with _client(tmp_path, "good", server, AGENT_TOKEN) as good:
            wait_for(lambda: Caller(good)("GET", "/v1/status/leader")[0] == 200)  # joined: tokens resolve
            registered = Caller(good)(
                "PUT", "/v1/agent/service/register", {"Name": "good-svc", "Port": 1}, token=ROOT
            )
            assert registered[0] == 200, registered
            wait_for(lambda: call.ok("GET", "/v1/catalog/service/good-svc") != [])
        with _client(tmp_path, "bad", server, "wrong-token") as bad:
            wait_for(lambda: "answered 403" in (tmp_path / "bad.log").read_text())
            assert Caller(bad)("GET", "/v1/catalog/nodes")[:2] == (500, "No known Consul servers")
        assert "bad" not in {n["Node"] for n in call.ok("GET", "/v1/catalog/nodes")}


def test_health_reads_from_a_client_agents_views_show_each_token_its_own(tmp_path: Path) -> None:
    """Blocking reads on a client agent come from one view per token: a token that may read
    the service but no node sees no rows, a token that may read both sees them, an unknown
    token gets the server's 403; with each token's view in place, the answers stay apart."""
    with start_acl_agent(tmp_path, f'agent = "{AGENT_TOKEN}"') as server:
        call = Caller(server)
        call.ok(
            "PUT",
            "/v1/catalog/register",
            {"Node": "ext", "Address": "192.0.2.5", "Service": {"Service": "web"}},
        )
        service_only = call.token_for('service "web" { policy = "read" }', "web-only")
        both = call.token_for(
            'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }', "web-nodes"
        )
        with _client(tmp_path, "reader", server, AGENT_TOKEN) as client:
            read = Caller(client)
            wait_for(lambda: read("GET", "/v1/status/leader")[0] == 200)
            for _ in range(2):  # the second time from views already in place
                status, rows, _ = read("GET", "/v1/health/service/web?index=1", token=both)
                assert (status, [r["Node"]["Node"] for r in rows]) == (200, ["ext"])
                assert read("GET", "/v1/health/service/web?index=1", token=service_only)[:2] == (200, [])
                status, message, _ = read("GET", "/v1/health/service/web?index=1", token="no-such-token")
                assert (status, message) == (403, "ACL not found")
            gauges = {g["Name"]: g["Value"] for g in read.ok("GET", "/v1/agent/metrics")["Gauges"]}
            assert gauges["waypost.client.views"] == 2  # the refused token's view went


def test_a_token_created_a_moment_ago_works_on_a_client_agent_at_once(tmp_path: Path) -> None:
    """A client agent resolves tokens from its copy of the ACL tables, which trails the
    servers' by a moment; a token it does not hold yet is looked up on a server (as Consul's
    client agents resolve tokens), so one created just before is never "ACL not found"."""
    with start_acl_agent(tmp_path, f'agent = "{AGENT_TOKEN}"') as server:
        call = Caller(server)
        call.ok("PUT", "/v1/acl/policy", {"Name": "reader", "Rules": 'service_prefix "" { policy = "read" }'})
        with _client(tmp_path, "reader", server, AGENT_TOKEN) as client:
            read = Caller(client)
            wait_for(lambda: read("GET", "/v1/status/leader")[0] == 200)
            for _ in range(20):
                secret = call.ok("PUT", "/v1/acl/token", {"Policies": [{"Name": "reader"}]})["SecretID"]
                assert read("GET", "/v1/agent/services", token=secret)[:2] == (200, {})
            assert read("GET", "/v1/agent/services", token="no-such-token")[:2] == (403, "ACL not found")
