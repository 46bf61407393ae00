from __future__ import annotations

import asyncio
import logging
import time

import pytest

from waypost.agent.leader import LeaderDuties, TombstoneTimer
from waypost.config.model import Duration, TombstoneGC, VirtualIPs
from waypost.state import catalog_ops, schema
from waypost.state.acl_ops import now_rfc3339
from waypost.state.kv_ops import LockDelays
from waypost.state.model import ACLToken, Node, NodeService
from waypost.state.state import State
from waypost.store.base import Put
from waypost.store.memory import MemoryStore
from waypost.testing import ManualClock, until


def test_deletes_become_reapable_a_ttl_later_batched_by_granularity() -> None:
    clock = ManualClock()
    timer = TombstoneTimer(TombstoneGC(ttl=Duration("60s"), granularity=Duration("10s")), clock)
    assert timer.next_expiry() is None
    timer.hint(5)
    clock.now += 3
    timer.hint(9)
    clock.now += 3
    timer.hint(12)
    assert timer.next_expiry() == 1060.0
    clock.now = 1059.9
    assert timer.expired() == 0
    clock.now = 1060.0
    assert timer.expired() == 5
    assert timer.next_expiry() == 1070.0
    clock.now = 1070.0
    assert timer.expired() == 12
    assert timer.next_expiry() is None
    assert timer.expired() == 0


def test_one_reap_covers_every_bin_that_came_due() -> None:
    clock = ManualClock()
    timer = TombstoneTimer(TombstoneGC(ttl=Duration("1s"), granularity=Duration("1s")), clock)
    timer.hint(3)
    clock.now += 5
    timer.hint(7)
    clock.now += 5
    timer.hint(8)
    assert timer.expired() == 7
    assert timer.next_expiry() == 1011.0


async def _register(state: State, *names: str) -> None:
    services = [NodeService(ID=n, Service=n, Port=80) for n in names]
    await catalog_ops.register(state, Node(Node="n1", Address="10.0.0.1"), services)


async def test_the_leader_gives_every_service_and_declared_name_an_address() -> None:
    state = State(MemoryStore())
    await state.start()
    vips = VirtualIPs(range="127.241.0.0/24", services={"api-v2": 'Service == api and "v2" in Tags'})
    duties = LeaderDuties(state, LockDelays(), TombstoneGC(), vips)
    try:
        await _register(state, "web")
        duties.start()
        await until(lambda: set(state.indexes.virtual_ips) == {"web", "api-v2"})
        await _register(state, "db")
        await until(lambda: "db" in state.indexes.virtual_ips)
        held = {n: r.IP for n, r in state.indexes.virtual_ips.items()}
        assert len(set(held.values())) == 3
        assert state.indexes.virtual_ips["api-v2"].Filter == 'Service == api and "v2" in Tags'
    finally:
        await duties.stop()
        await state.close()


async def test_a_full_range_is_logged_once_naming_the_services_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = State(MemoryStore())
    await state.start()
    duties = LeaderDuties(state, LockDelays(), TombstoneGC(), VirtualIPs(range="127.241.0.0/31"))
    try:
        await _register(state, "a", "b", "c")
        with caplog.at_level(logging.ERROR, logger="waypost.leader"):
            duties.start()
            await until(lambda: len(state.indexes.virtual_ips) == 2)
            await until(lambda: any("is full" in r.message for r in caplog.records))
            await _register(state, "a", "b", "c", "d")
            await until(lambda: sum("is full" in r.message for r in caplog.records) == 2)
            await catalog_ops.register(state, Node(Node="n1", Address="10.0.0.2"))
            await asyncio.sleep(0.2)
        full = [r.message for r in caplog.records if "is full" in r.message]
        assert full == [
            'virtual IP range 127.241.0.0/31 is full: no address for "c"',
            'virtual IP range 127.241.0.0/31 is full: no address for "c", "d"',
        ]
        assert set(state.indexes.virtual_ips) == {"a", "b"}
        assert not any(r.exc_info for r in caplog.records), "a full range is not a crash"
    finally:
        await duties.stop()
        await state.close()


async def test_the_leader_reaps_tokens_past_their_expiration_time() -> None:
    state = State(MemoryStore())
    await state.start()
    now = time.time()
    for accessor, expires in (("gone", now - 5), ("soon", now + 0.3), ("lasting", None)):
        token = ACLToken(
            AccessorID=accessor,
            SecretID=f"s-{accessor}",
            ExpirationTime="" if expires is None else now_rfc3339(expires),
        )
        await state.write(lambda t=token: ([], [Put(schema.ACL_TOKENS.key(t.AccessorID), schema.encode(t))]))
    duties = LeaderDuties(state, LockDelays(), TombstoneGC())
    try:
        duties.start()
        await until(lambda: "gone" not in state.indexes.acl_tokens)
        assert "soon" in state.indexes.acl_tokens
        await until(lambda: "soon" not in state.indexes.acl_tokens)
        assert time.time() >= now + 0.3
        assert set(state.indexes.acl_tokens) == {"lasting"}
    finally:
        await duties.stop()
        await state.close()
