"""``waypost force-leave``: Consul's output and exit codes against the dev server."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from cli_support import Runner

from waypost.testing import AgentProcess, wait_for

FAST_LIVENESS = {"liveness": {"heartbeat_interval": "200ms", "failure_timeout": "2s"}}


def _status(agent: AgentProcess, name: str) -> int | None:
    return {m["Name"]: m["Status"] for m in agent.get("/v1/agent/members")}.get(name)


def test_force_leave_prune_forgets_a_dead_client(
    waypost: Runner, dev_agent: AgentProcess, tmp_path: Path
) -> None:
    config = tmp_path / "live.json"
    config.write_text(json.dumps(FAST_LIVENESS))
    args = [
        *("-data-dir", str(tmp_path / "c"), "-bind", "127.0.0.1", "-node", "doomed"),
        *("-config-file", str(config), "-retry-join", dev_agent.server_address),
    ]
    client = AgentProcess(args, log_path=tmp_path / "c.log").start()
    client.kill(signal.SIGKILL)
    wait_for(lambda: _status(dev_agent, "doomed") == 4)
    r = waypost("force-leave", "-prune", "doomed")
    assert (r.code, r.out, r.err) == (0, "", "")
    assert _status(dev_agent, "doomed") is None
    assert dev_agent.get("/v1/catalog/node/doomed") is None


def test_force_leave_errors(waypost: Runner) -> None:
    r = waypost("force-leave")
    assert r.code == 1
    assert r.err.startswith("A single node name must be specified to force leave.\n\nUsage: waypost")
    assert waypost("force-leave", "a", "b").code == 1
    r = waypost("force-leave", "nobody")
    assert (r.code, r.out) == (1, "")
    unknown = "Unexpected response code: 500 (agent: No node found with name 'nobody')"
    assert r.err == f"Error force leaving: {unknown}\n"
    assert "-prune" in waypost("force-leave", "-h").out
