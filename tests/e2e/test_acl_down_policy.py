"""``acl.down_policy`` on client agents whose servers are gone: one client agent per
policy joined to a default-deny server, a token used on each while the server runs, then
the server stopped. Past ``token_ttl`` the deny client refuses the token, the
extend-cache client keeps answering it (and refuses a token it never resolved), and the
allow client lets even the anonymous token through. ``/v1/acl/token/self`` fails on all
three once the server is gone, as Consul's (a read from the servers) does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acl_kit import ROOT, Caller, start_acl_agent
from waypost.testing import AgentProcess, wait_for

AGENT_TOKEN = "9d3f0b7a-2c61-4e58-a1d4-6b8e0f2c5a97"
TOKEN_TTL = 3.0
POLICIES = ("allow", "deny", "extend-cache")
AGENT_READ = 'agent_prefix "" { policy = "read" }'


def _client(tmp: Path, policy: str, server: AgentProcess) -> AgentProcess:
    name = f"client-{policy}"
    config = tmp / f"{name}.hcl"
    config.write_text(
        f'acl {{\n enabled = true\n default_policy = "deny"\n down_policy = "{policy}"\n'
        f' token_ttl = "{TOKEN_TTL:g}s"\n tokens {{\n  agent = "{AGENT_TOKEN}"\n }}\n}}\n'
    )
    args = [
        *("-data-dir", str(tmp / name), "-bind", "127.0.0.1", "-node", name, "-config-file", str(config)),
        *("-retry-join", server.server_address, "-retry-interval", "1s"),
    ]
    return AgentProcess(args, log_path=tmp / f"{name}.log")


class Outage:
    """The clients, the tokens made while the server ran, and when the used one was last used."""

    def __init__(self, clients: dict[str, Caller], used: str, unused: str, last_used: float) -> None:
        self.clients = clients
        self.used = used
        self.unused = unused
        self.last_used = last_used


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    tmp = tmp_path_factory.mktemp("down-policy")
    server = start_acl_agent(tmp, f'agent = "{AGENT_TOKEN}"').start()
    clients: list[AgentProcess] = []
    try:
        for policy in POLICIES:
            clients.append(_client(tmp, policy, server).start(timeout=30))
        callers = {policy: Caller(agent) for policy, agent in zip(POLICIES, clients, strict=True)}
        root = Caller(server)
        used = root.token_for(AGENT_READ, "down-used")
        unused = root.ok("PUT", "/v1/acl/token", {"Policies": [{"Name": "down-used"}]})["SecretID"]
        for call in callers.values():
            wait_for(lambda call=call: call("GET", "/v1/agent/self", token=used)[0] == 200)
            assert call("GET", "/v1/agent/self")[0] == 403
            assert call("GET", "/v1/acl/token/self", token=used)[0] == 200
        last_used = time.monotonic()
        server.stop()
        yield Outage(callers, used, str(unused), last_used)
    finally:
        for agent in clients:
            agent.stop()
        server.stop()


def test_deny_refuses_every_token_past_token_ttl(outage: Outage) -> None:
    deny = outage.clients["deny"]
    wait_for(lambda: deny("GET", "/v1/agent/self", token=outage.used)[0] == 403, TOKEN_TTL + 15)
    assert time.monotonic() - outage.last_used >= TOKEN_TTL
    status, message, _ = deny("GET", "/v1/agent/self", token=outage.used)
    assert status == 403
    assert message.startswith("Permission denied: token with AccessorID 'primary-dc-down' lacks permission")


def test_extend_cache_keeps_the_tokens_it_resolved(outage: Outage) -> None:
    extend = outage.clients["extend-cache"]
    while time.monotonic() - outage.last_used <= TOKEN_TTL + 1:
        time.sleep(0.2)
    assert extend("GET", "/v1/agent/self", token=outage.used)[0] == 200
    assert extend("GET", "/v1/agent/self", token=outage.unused)[0] == 403
    assert extend("GET", "/v1/agent/self")[0] == 403  # anonymous: resolved before, still default deny


def test_allow_lets_every_token_through(outage: Outage) -> None:
    allow = outage.clients["allow"]
    wait_for(lambda: allow("GET", "/v1/agent/self")[0] == 200, TOKEN_TTL + 15)
    assert allow("GET", "/v1/agent/self", token=outage.unused)[0] == 200
    # ACL endpoints are the servers' (the client relays them), so none answers them now.
    assert allow("GET", "/v1/acl/tokens", token=ROOT)[:2] == (500, "No known Consul servers")


def test_token_self_fails_whatever_the_policy(outage: Outage) -> None:
    """Last: a token's own record is never answered from a copy no server keeps current,
    neither within token_ttl nor past it (the down policy answers permissions only)."""
    for policy, call in outage.clients.items():
        wait_for(lambda call=call: call("GET", "/v1/acl/token/self", token=outage.used)[0] == 500, 15)
        for token in (outage.used, outage.unused, ROOT):
            assert call("GET", "/v1/acl/token/self", token=token)[:2] == (500, "No known Consul servers"), (
                policy
            )
