from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from etcd_cluster import EtcdCluster, etcd_available, etcd_cluster
from waypost.state.state import State
from waypost.store.memory import MemoryStore
from waypost.testing import AgentProcess


@pytest.fixture(scope="module")
def dev_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """One real ``waypost agent -dev`` per test module."""
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    with AgentProcess(["-dev", "-node", "test-node"], log_path=log) as agent:
        yield agent


@pytest.fixture
async def state() -> AsyncIterator[State]:
    """A started state machine over a fresh in-memory store."""
    st = State(MemoryStore())
    await st.start()
    yield st
    await st.close()


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """One real single-member etcd per test module; tests that share it keep to their own keys."""
    if not etcd_available():
        pytest.skip("etcd is not installed")
    with etcd_cluster(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster
