from __future__ import annotations

import asyncio
import ipaddress
import random
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from waypost.state.indexes import Indexes
from waypost.state.state import State
from waypost.state.vip_ops import VipRangeFullError, allocate, parse_range, plan_allocation
from waypost.store.base import Store
from waypost.store.etcd import EtcdStore
from waypost.store.memory import MemoryStore
from waypost.store.sqlite import SqliteStore

sys.path.append(str(Path(__file__).resolve().parent.parent))

from etcd_cluster import EtcdCluster

RANGE = parse_range("127.240.0.0/12")


@asynccontextmanager
async def _states(store: Store, count: int) -> AsyncIterator[list[State]]:
    states = [State(store) for _ in range(count)]
    for st in states:
        await asyncio.wait_for(st.start(), 5)
    try:
        yield states
    finally:
        for st in states:
            await st.close()


def _assert_one_to_one(state: State, names: set[str]) -> dict[str, str]:
    """Every name holds one address, every address one name, and claims match records."""
    held = {name: rec.IP for name, rec in state.indexes.virtual_ips.items()}
    assert set(held) == names
    assert len(set(held.values())) == len(held)
    assert {ip: c.Name for ip, c in state.indexes.virtual_ip_claims.items()} == {
        ip: n for n, ip in held.items()
    }
    return held


async def test_each_name_gets_its_own_address_from_the_range(state: State) -> None:
    await allocate(state, RANGE, {"web": "", "db": "", "api-v2": 'Service == api and "v2" in Tags'})
    held = _assert_one_to_one(state, {"web", "db", "api-v2"})
    assert all(ipaddress.ip_address(ip) in RANGE for ip in held.values())
    assert "127.240.0.0" not in held.values()
    assert state.indexes.virtual_ips["api-v2"].Filter == 'Service == api and "v2" in Tags'
    revision = state.indexes.revision
    await allocate(state, RANGE, {"web": "", "db": ""})
    assert state.indexes.revision == revision, "an allocation with nothing to do writes nothing"


async def test_a_changed_filter_keeps_the_address(state: State) -> None:
    await allocate(state, RANGE, {"api": "Service == api"})
    before = state.indexes.virtual_ips["api"]
    await allocate(state, RANGE, {"api": 'Service == api and Meta.env == "prod"'})
    after = state.indexes.virtual_ips["api"]
    assert (after.IP, after.Filter) == (before.IP, 'Service == api and Meta.env == "prod"')


async def test_a_full_range_is_an_error_naming_what_did_not_fit(state: State) -> None:
    small = parse_range("127.250.0.0/30")
    with pytest.raises(VipRangeFullError) as caught:
        await allocate(state, small, {"a": "", "b": "", "c": ""})
    assert str(caught.value) == 'virtual IP range 127.250.0.0/30 is full: no address for "c"'
    assert caught.value.names == ["c"]
    held = _assert_one_to_one(state, {"a", "b"})
    assert set(held.values()) == {"127.250.0.1", "127.250.0.2"}
    await allocate(state, small, {"a": "", "b": ""})


async def test_more_names_than_one_transaction_holds_are_written_in_batches(state: State) -> None:
    names = {f"svc-{i}" for i in range(130)}
    await allocate(state, RANGE, dict.fromkeys(names, ""))
    _assert_one_to_one(state, names)


async def test_ipv6_ranges_use_every_address_but_the_anycast_one(state: State) -> None:
    v6 = parse_range("fd00:ec2::/126")
    await allocate(state, v6, {"a": "", "b": "", "c": ""})
    with pytest.raises(VipRangeFullError, match='no address for "d"'):
        await allocate(state, v6, {"d": ""})
    held = _assert_one_to_one(state, {"a", "b", "c"})
    assert sorted(held.values()) == ["fd00:ec2::1", "fd00:ec2::2", "fd00:ec2::3"]


def test_a_range_with_host_bits_or_not_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match="host bits set") as caught:
        parse_range("127.240.0.5/12")
    assert str(caught.value) == 'invalid virtual IP range "127.240.0.5/12": 127.240.0.5/12 has host bits set'
    with pytest.raises(ValueError, match='invalid virtual IP range "nope"'):
        parse_range("nope")


async def test_addresses_survive_a_restart_and_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    async with _states(store, 1) as (state,):
        await allocate(state, RANGE, {"web": "", "db": ""})
        first = _assert_one_to_one(state, {"web", "db"})
    await store.close()
    store = SqliteStore(path)
    try:
        async with _states(store, 1) as (state,):
            assert _assert_one_to_one(state, {"web", "db"}) == first
            await allocate(state, RANGE, {"web": "", "db": "", "cache": ""})
            assert state.indexes.virtual_ips["cache"].IP not in first.values()
    finally:
        await store.close()


async def _race(states: list[State], names: list[str]) -> None:
    """Every agent allocates overlapping subsets of ``names`` at once, as agents that all
    saw the same new services would."""
    rng = random.Random(7)
    jobs = []
    for i in range(12):
        subset = rng.sample(names, k=len(names) // 2)
        jobs.append(allocate(states[i % len(states)], RANGE, dict.fromkeys(subset, "")))
    jobs += [allocate(st, RANGE, dict.fromkeys(names, "")) for st in states]
    await asyncio.wait_for(asyncio.gather(*jobs), 30)


async def test_concurrent_allocators_on_one_store_never_share_an_address() -> None:
    store = MemoryStore()
    names = [f"svc-{i}" for i in range(80)]
    async with _states(store, 3) as states:
        await _race(states, names)
        for st in states:
            await st.catch_up()
        views = [_assert_one_to_one(st, set(names)) for st in states]
        assert views[0] == views[1] == views[2]


async def test_a_writer_with_a_stale_view_cannot_take_a_claimed_address(state: State) -> None:
    """A plan made from indexes that miss another agent's allocation picks the taken address;
    the store refuses it, so the writer re-plans instead of sharing the address."""
    await allocate(state, RANGE, {"web": ""})
    planned, _ = plan_allocation(Indexes(), RANGE, {"api": ""})
    assert planned is not None
    compares, ops = planned
    result = await state.store.txn(compares, ops)
    assert not result.succeeded
    await allocate(state, RANGE, {"api": ""})
    _assert_one_to_one(state, {"web", "api"})


@pytest.mark.etcd
async def test_agents_on_real_etcd_race_without_sharing_an_address(etcd: EtcdCluster) -> None:
    stores = [EtcdStore(etcd.endpoints) for _ in range(3)]
    names = [f"etcd-svc-{i}" for i in range(60)]
    try:
        states = [State(s) for s in stores]
        for st in states:
            await asyncio.wait_for(st.start(), 10)
        try:
            await _race(states, names)
            for st in states:
                await asyncio.wait_for(st.catch_up(), 10)
            views = [_assert_one_to_one(st, set(names)) for st in states]
            assert views[0] == views[1] == views[2]
        finally:
            for st in states:
                await st.close()
    finally:
        for s in stores:
            await s.close()
