"""``waypost agent`` as a process: what it sets up for itself before it serves."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from waypost.testing import AgentProcess


def _open_files_limits(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open files limit listed")


def test_the_agent_lifts_its_open_files_limit_to_the_hard_one(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip("the hard limit leaves no room below it")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        agent = AgentProcess(["-dev", "-node", "nofile"], log_path=tmp_path / "agent.log").start(30)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert agent.proc is not None
        lifted, ceiling = _open_files_limits(agent.proc.pid)
        assert lifted == ceiling != "256"
    finally:
        agent.stop()
