"""``waypost join``: a client agent started alone joins the dev server through the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import run_cli

from waypost.testing import AgentProcess, free_port


@pytest.fixture
def lone_client(tmp_path: Path) -> Iterator[AgentProcess]:
    args = ["-data-dir", str(tmp_path / "c"), "-bind", "127.0.0.1", "-node", "cli-joiner"]
    with AgentProcess(args, log_path=tmp_path / "c.log", wait_for_leader=False) as client:
        yield client


def test_join_contacts_every_address_and_counts_those_that_answered(
    dev_agent: AgentProcess, lone_client: AgentProcess
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    r = run_cli(lone_client, "join", dead, dev_agent.server_address)
    assert (r.code, r.out) == (0, "Successfully joined cluster by contacting 1 nodes.\n")
    assert r.err.startswith(
        f"Error joining address '{dead}': Unexpected response code: 500 (1 error occurred:"
    )
    assert f"Failed to join {dead}: dial tcp {dead}: connect: connection refused" in r.err
    names = {m["Name"] for m in lone_client.get("/v1/agent/members")}
    assert names >= {"cli-joiner", "test-node"}


def test_join_failures_and_usage(dev_agent: AgentProcess, lone_client: AgentProcess) -> None:
    r = run_cli(lone_client, "join")
    assert r.code == 1
    assert r.err.startswith("At least one address to join must be specified.\n\nUsage: waypost join")
    r = run_cli(lone_client, "join", dev_agent.address)
    assert r.code == 1
    assert "not a server's agent-to-server address (answered 404)" in r.err
    assert r.err.endswith("Failed to join any nodes.\n")
    r = run_cli(lone_client, "join", "127.0.0.1:http")
    assert "Unexpected response code: 400 (Invalid join address:" in r.err
    r = run_cli(lone_client, "join", "-wan", dev_agent.server_address)
    assert r.code == 1
    assert "Must be a server to join WAN cluster" in r.err
    r = run_cli(dev_agent, "join", "-wan", dev_agent.address)  # a WAN join names a server's HTTP API
    assert (r.code, r.out) == (0, "Successfully joined cluster by contacting 1 nodes.\n")
    r = run_cli(dev_agent, "join", "-wan", dev_agent.server_address)
    assert r.code == 1
    assert f"Failed to join {dev_agent.server_address}: 404 404 page not found" in r.err
