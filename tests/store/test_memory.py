"""What the in-process stores add beyond the contract: an injected clock drives lease
expiry, history is bounded, and watchers never hold writers back."""

from __future__ import annotations

import asyncio

import pytest

from waypost.store import open_store
from waypost.store.base import CompactedError, EventType, LeaseNotFoundError
from waypost.store.etcd import EtcdStore
from waypost.store.memory import MemoryStore
from waypost.testing import ManualClock


async def test_empty_store_is_revision_one() -> None:
    store = MemoryStore()
    assert await store.revision() == 1
    assert await store.put("k", b"v") == 2
    await store.close()


async def test_lease_expiry_follows_the_injected_clock() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    lease = await store.lease_grant(10)
    await store.put("k", b"v", lease=lease)
    clock.now += 5
    assert await store.expire_leases() == 0
    assert await store.lease_keepalive(lease) == 10
    clock.now += 9.5
    assert await store.expire_leases() == 0
    assert await store.get("k") is not None
    clock.now += 0.5
    assert await store.expire_leases() == 1
    assert await store.get("k") is None
    with pytest.raises(LeaseNotFoundError):
        await store.lease_keepalive(lease)
    await store.close()


async def test_history_is_bounded() -> None:
    store = MemoryStore(history_limit=10)
    for i in range(30):
        await store.put(f"k/{i}", b"v")
    with pytest.raises(CompactedError) as raised:
        await anext(store.watch("", 2))
    assert raised.value.compact_revision == 22
    stream = store.watch("k/", 22)
    [event] = await asyncio.wait_for(anext(stream), 5)
    assert (event.type, event.kv.key) == (EventType.PUT, "k/20")
    await stream.aclose()  # type: ignore[attr-defined]
    await store.close()


async def test_an_idle_watcher_does_not_block_writers() -> None:
    store = MemoryStore(history_limit=100)
    lagging = store.watch("", 2)
    for i in range(1000):
        await store.put(f"k/{i}", b"v")
    with pytest.raises(CompactedError):
        await asyncio.wait_for(anext(lagging), 5)
    await store.close()


async def test_open_store_by_url() -> None:
    memory = open_store("memory://")
    assert isinstance(memory, MemoryStore)
    await memory.close()
    etcd = open_store("etcd://127.0.0.1:1,127.0.0.1:2")
    assert isinstance(etcd, EtcdStore)
    assert etcd.endpoints == ["127.0.0.1:1", "127.0.0.1:2"]
    await etcd.close()
    for bad in ("nowhere", "zookeeper://x", "etcd://", "sqlite://"):
        with pytest.raises(ValueError, match=r"."):
            open_store(bad)
