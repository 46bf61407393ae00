"""The ``waypost`` fixture: the real command line against the module's real dev agent."""

from __future__ import annotations

import pytest
from cli_support import Result, Runner, run_cli

from waypost.testing import AgentProcess

__all__ = ["Result", "Runner"]


@pytest.fixture
def waypost(dev_agent: AgentProcess) -> Runner:
    """``waypost("kv", "get", "foo")`` runs the command with CONSUL_HTTP_ADDR pointing at the dev agent."""

    def run(*args: str, **kw: object) -> Result:
        return run_cli(dev_agent, *args, **kw)  # type: ignore[arg-type]

    return run
