"""One ``store`` fixture yielding every backend, so the contract suite runs against each.

The etcd variant shares one real etcd per module and isolates tests by key prefix
(``ns``); the in-process backends are fresh for every test.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from waypost.store.base import Store
from waypost.store.etcd import EtcdStore
from waypost.store.memory import MemoryStore
from waypost.store.sqlite import SqliteStore

# The shared etcd helper lives beside the test directories, not inside one.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from etcd_cluster import EtcdCluster


@pytest.fixture(params=["memory", "sqlite", pytest.param("etcd", marks=pytest.mark.etcd)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Store
    if request.param == "memory":
        backend = MemoryStore()
    elif request.param == "sqlite":
        backend = SqliteStore(tmp_path / "store.db")
    else:
        cluster: EtcdCluster = request.getfixturevalue("etcd")
        backend = EtcdStore(cluster.endpoints)
    yield backend
    await backend.close()


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    """A key prefix no other test uses, since the etcd backend is shared."""
    return f"t/{request.node.name}/"
