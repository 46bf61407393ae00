"""Membership as Consul shows it: force-leave of running and dead agents, refutation.
(Client agents failing over to servers learned from members: tests/e2e/test_cluster.py.)"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from waypost.testing import AgentProcess, wait_for

FAST_LIVENESS = {"liveness": {"heartbeat_interval": "200ms", "failure_timeout": "2s"}}
ALIVE, LEFT, FAILED = 1, 3, 4


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AgentProcess]:
    with AgentProcess(["-dev", "-node", "srv"], log_path=tmp_path / "srv.log") as agent:
        yield agent


def _client(tmp_path: Path, name: str, server: AgentProcess) -> AgentProcess:
    """A client agent joined to ``server``, with one service; the caller stops it."""
    config = tmp_path / "live.json"
    config.write_text(json.dumps(FAST_LIVENESS))
    args = [
        *("-data-dir", str(tmp_path / name), "-bind", "127.0.0.1", "-node", name),
        *("-config-file", str(config), "-retry-join", server.server_address),
    ]
    client = AgentProcess(args, log_path=tmp_path / f"{name}.log").start()
    client.put("/v1/agent/service/register", {"Name": f"{name}-svc", "Port": 1})
    return client


def _members(agent: AgentProcess) -> dict[str, int]:
    return {m["Name"]: m["Status"] for m in agent.get("/v1/agent/members")}


def test_force_leave_of_a_running_agent_is_refuted(server: AgentProcess, tmp_path: Path) -> None:
    runner = _client(tmp_path, "runner", server)
    log = tmp_path / "runner.log"
    try:
        server.put("/v1/agent/force-leave/runner")
        wait_for(lambda: log.read_text().count("refuting a force-leave") == 1)
        wait_for(lambda: _members(server)["runner"] == ALIVE)
        assert server.get("/v1/catalog/node/runner")["Services"]["runner-svc"]["Port"] == 1
        server.put("/v1/agent/force-leave/runner?prune")
        wait_for(lambda: log.read_text().count("refuting a force-leave") == 2)
        wait_for(lambda: _members(server).get("runner") == ALIVE)
        assert _members(runner)["runner"] == ALIVE
    finally:
        runner.stop()


def test_force_leave_of_a_dead_agent_reaps_it(server: AgentProcess, tmp_path: Path) -> None:
    dead = _client(tmp_path, "dead", server)
    dead.kill(signal.SIGKILL)
    wait_for(lambda: _members(server)["dead"] == FAILED)
    assert server.get("/v1/catalog/node/dead") is not None
    server.put("/v1/agent/force-leave/dead")
    assert _members(server)["dead"] == LEFT
    assert server.get("/v1/catalog/node/dead") is None
    server.put("/v1/agent/force-leave/dead?prune")
    assert "dead" not in _members(server)


def test_force_leave_errors_as_consul(server: AgentProcess) -> None:
    status, _, body = server.request("PUT", "/v1/agent/force-leave/ghost")
    assert (status, body) == (500, b"agent: No node found with name 'ghost'")
    server.put("/v1/agent/force-leave/srv.dc1?wan")  # WAN names carry the datacenter
    wait_for(lambda: _members(server)["srv"] == ALIVE)
