"""Fixtures for the proxy tests that follow a real agent through its API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from waypost.client import ApiClient
from waypost.testing import AgentProcess


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """A ``-dev`` agent per module (a module may override it with its own configuration)."""
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    with AgentProcess(["-dev"], log_path=log) as proc:
        yield proc


@pytest.fixture
async def api(agent: AgentProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(agent.address) as client:
        yield client
