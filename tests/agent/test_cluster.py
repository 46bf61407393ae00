"""Membership as Consul shows it: force-leave of running and dead agents, refutation.
(Client agents failing over to servers learned from members: tests/e2e/test_cluster.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from waypost.state import schema
from waypost.state.model import Member
from waypost.store.remote import RemoteStore
from waypost.testing import AgentProcess, wait_for

ALIVE, LEAVING, LEFT, FAILED = 1, 2, 3, 4


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AgentProcess]:
    with AgentProcess(["-dev", "-node", "srv"], log_path=tmp_path / "srv.log") as agent:
        yield agent


def _client(
    tmp_path: Path, name: str, server: AgentProcess, failure_timeout: str = "2s", heartbeat: str = "200ms"
) -> AgentProcess:
    """A client agent joined to ``server``, with one service; the caller stops it."""
    config = tmp_path / f"{name}.json"
    liveness = {"heartbeat_interval": heartbeat, "failure_timeout": failure_timeout}
    config.write_text(json.dumps({"liveness": liveness}))
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
        wait_for(lambda: _members(runner).get("runner") == ALIVE)  # its copy follows the servers
    finally:
        runner.stop()


def test_a_force_left_agent_shows_leaving_until_it_refutes(server: AgentProcess, tmp_path: Path) -> None:
    """Serf's statuses: a running member told to leave is ``leaving`` until it refutes. The
    agent is paused (its liveness lease outlasts the test) so that it cannot refute at once."""
    paused = _client(tmp_path, "paused", server, failure_timeout="60s")
    assert paused.proc is not None
    try:
        os.killpg(paused.proc.pid, signal.SIGSTOP)
        try:
            server.put("/v1/agent/force-leave/paused")
            assert _members(server)["paused"] == LEAVING
            assert server.get("/v1/catalog/node/paused") is not None
        finally:
            os.killpg(paused.proc.pid, signal.SIGCONT)
        wait_for(lambda: _members(server)["paused"] == ALIVE)
    finally:
        paused.stop()


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


def _serf_health(agent: AgentProcess, node: str) -> str:
    checks = {c["CheckID"]: c["Status"] for c in agent.get(f"/v1/health/node/{node}")}
    return checks["serfHealth"]


def _health_seen(server: AgentProcess, node: str, seconds: float) -> set[str]:
    """Every serfHealth status of ``node`` seen while polling it for ``seconds``."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(_serf_health(server, node))
        time.sleep(0.25)
    return seen


def _fails_once_killed(server: AgentProcess, agent: AgentProcess, node: str, deadline: float) -> None:
    """Killed, ``node`` turns critical within its liveness ``deadline`` plus a margin."""
    agent.kill(signal.SIGKILL)
    wait_for(lambda: _serf_health(server, node) == "critical", limit=deadline + 20.0)


def test_a_slow_heartbeat_is_judged_by_its_own_deadline(server: AgentProcess, tmp_path: Path) -> None:
    """The server's own heartbeat is 200 ms with a 2 s timeout; a node beating every 3 s
    holds a lease of three of its intervals (9 s), so it stays passing across several of
    its beats, and once killed it still fails, within that deadline plus a margin."""
    slow = _client(tmp_path, "slow", server, heartbeat="3s")
    try:
        wait_for(lambda: _serf_health(server, "slow") == "passing")
        assert _health_seen(server, "slow", 7.0) == {"passing"}
        _fails_once_killed(server, slow, "slow", 9.0)
        assert _members(server)["slow"] == FAILED
    finally:
        slow.stop()


async def _add_members(server: AgentProcess, count: int) -> None:
    """Member records as joining agents write them, through the agent-to-server API."""
    store = RemoteStore([server.server_address])
    try:
        for i in range(count):
            member = Member(Name=f"grown-{i}", Addr="127.0.0.1")
            await store.put(schema.MEMBERS.key(member.Name), schema.encode(member))
    finally:
        await store.close()


def test_a_default_heartbeat_slows_as_the_cluster_grows_without_a_lapse(
    server: AgentProcess, tmp_path: Path
) -> None:
    """Past 128 members the default 1 s heartbeat doubles, and the agent moves its liveness
    key onto a lease of the longer deadline (6 s) before dropping the old one (3 s): its
    serfHealth never flaps, and once killed it still fails."""
    config = tmp_path / "grower.json"
    config.write_text(json.dumps({"liveness": {"failure_timeout": "2s"}}))
    log = tmp_path / "grower.log"
    args = [
        *("-data-dir", str(tmp_path / "grower"), "-bind", "127.0.0.1", "-node", "grower"),
        *("-config-file", str(config), "-retry-join", server.server_address),
    ]
    grower = AgentProcess(args, log_path=log).start()
    try:
        wait_for(lambda: _serf_health(server, "grower") == "passing")
        asyncio.run(_add_members(server, 200))
        seen: set[str] = set()

        def moved() -> bool:
            seen.add(_serf_health(server, "grower"))
            return "liveness deadline 3.0s -> 6.0s" in log.read_text()

        wait_for(moved, limit=20.0)
        assert seen | _health_seen(server, "grower", 5.0) == {"passing"}
        _fails_once_killed(server, grower, "grower", 6.0)
    finally:
        grower.stop()
