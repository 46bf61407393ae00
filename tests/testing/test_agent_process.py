"""The test harness's agent: ports it chose that are taken before the agent binds them are
chosen again; a port the test named is not."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from waypost.testing import AgentProcess, free_port


def _take_udp(port: int) -> socket.socket:
    taker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taker.bind(("127.0.0.1", port))
    return taker


def test_a_chosen_port_taken_before_start_is_chosen_again(tmp_path: Path) -> None:
    agent = AgentProcess(["-dev"], log_path=tmp_path / "a.log")
    taken = agent.dns_port
    with _take_udp(taken), agent:
        assert agent.dns_port != taken
        assert agent.get("/v1/agent/self")["DebugConfig"]["DNSPort"] == agent.dns_port
    assert "address already in use" in (tmp_path / "a.log").read_text()


def test_a_named_port_that_is_taken_fails_start_up(tmp_path: Path) -> None:
    port = free_port()
    with _take_udp(port), pytest.raises(RuntimeError, match="exited with 1"):
        AgentProcess(["-dev"], dns_port=port, log_path=tmp_path / "a.log").start()
