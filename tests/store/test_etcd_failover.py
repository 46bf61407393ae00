"""The etcd store across a three-member cluster: calls and watches survive losing a member,
and a transaction interrupted mid-flight is never answered wrongly."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from etcd_cluster import EtcdCluster, etcd_available, etcd_cluster
from tcp_relay import Relay
from waypost.store.base import Compare, Delete, KeyValue, Op, Put, Range, RangeResult, StoreError
from waypost.store.etcd import EtcdStore

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd is not installed"),
]


async def test_calls_and_watch_fail_over_to_another_member(tmp_path: Path) -> None:
    with etcd_cluster(tmp_path, members=3) as cluster:
        store = EtcdStore(cluster.endpoints)
        try:
            first = await store.put("k/before", b"1")
            stream = store.watch("k/", first)
            [event] = await asyncio.wait_for(anext(stream), 10)
            assert event.kv.key == "k/before"

            # The store talks to the first endpoint until it fails.
            cluster.members[0].kill()
            revision = await store.put("k/after", b"2")
            assert revision == first + 1
            [event] = await asyncio.wait_for(anext(stream), 20)
            assert (event.kv.key, event.kv.mod_revision) == ("k/after", revision)
            await stream.aclose()  # type: ignore[attr-defined]
        finally:
            await store.close()


# -- transactions interrupted mid-flight ---------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with etcd_cluster(tmp_path_factory.mktemp("etcd3"), members=3) as running:
        yield running


@pytest.fixture
async def relayed(cluster: EtcdCluster) -> AsyncIterator[tuple[Relay, EtcdStore, EtcdStore]]:
    """A store whose first endpoint is a relay to the first member, with a short timeout,
    and a second store that reads the truth straight from the members."""
    with Relay(cluster.members[0].endpoint) as relay:
        store = EtcdStore([relay.address, *cluster.endpoints[1:]], timeout=1.0)
        truth = EtcdStore(cluster.endpoints)
        try:
            await store.revision()  # connected through the relay before anything is swallowed
            yield relay, store, truth
        finally:
            await store.close()
            await truth.close()


def _cas(key: str, expected: KeyValue | None, value: bytes) -> tuple[list[Compare], list[Op]]:
    guard = Compare(key, "mod", "=", expected.mod_revision) if expected else Compare(key, "version", "=", 0)
    return [guard], [Put(key, value), Put(f"{key}/log/{value.decode()}", b"")]


async def test_a_transaction_whose_answer_is_lost_reports_that_it_applied(
    relayed: tuple[Relay, EtcdStore, EtcdStore], caplog: pytest.LogCaptureFixture
) -> None:
    relay, store, truth = relayed
    relay.swallow_replies = True
    caplog.set_level(logging.INFO, "waypost.store.etcd")
    result = await store.txn(*_cas("lost-reply", None, b"1"))
    assert result.succeeded
    kv = await truth.get("lost-reply")
    assert kv is not None
    assert (kv.value, kv.version, kv.mod_revision) == (b"1", 1, result.revision)
    assert result.responses == [result.revision, result.revision]
    assert "interrupted transaction had applied" in caplog.text


async def test_a_transaction_cut_off_after_it_committed_is_not_sent_again_and_reported_failed(
    relayed: tuple[Relay, EtcdStore, EtcdStore],
) -> None:
    relay, store, truth = relayed
    relay.swallow_replies = True
    call = asyncio.ensure_future(store.txn(*_cas("cut-off", None, b"1")))
    for _ in range(100):
        if await truth.get("cut-off") is not None:
            break
        await asyncio.sleep(0.01)
    relay.cut()  # the call fails at once, as with a member that dies
    result = await asyncio.wait_for(call, 30)
    kv = await truth.get("cut-off")
    assert kv is not None
    assert result.succeeded
    assert (kv.version, kv.mod_revision) == (1, result.revision)


async def test_a_transaction_that_never_arrived_is_sent_again_and_applies_once(
    relayed: tuple[Relay, EtcdStore, EtcdStore],
) -> None:
    relay, store, truth = relayed
    relay.swallow_requests = True
    result = await store.txn(*_cas("never-arrived", None, b"1"))
    assert result.succeeded
    kv = await truth.get("never-arrived")
    assert kv is not None
    assert (kv.version, kv.mod_revision) == (1, result.revision)


async def test_an_interrupted_delete_and_range_are_answered_as_etcd_would_have(
    relayed: tuple[Relay, EtcdStore, EtcdStore],
) -> None:
    relay, store, truth = relayed
    await truth.put("mixed/a", b"a")
    await truth.put("mixed/b", b"b")
    relay.swallow_replies = True
    ops: list[Op] = [
        Range("mixed/", prefix=True),
        Delete("mixed/a"),
        Put("mixed/c", b"c"),
        Range("mixed/", prefix=True),
    ]
    result = await store.txn([], ops)
    before, deleted, put, after = result.responses
    assert isinstance(before, RangeResult)
    assert isinstance(after, RangeResult)
    assert [kv.key for kv in before.kvs] == ["mixed/a", "mixed/b"]
    assert (deleted, put) == (1, result.revision)
    assert [(kv.key, kv.mod_revision) for kv in after.kvs] == [
        ("mixed/b", before.kvs[1].mod_revision),
        ("mixed/c", result.revision),
    ]


async def test_compare_and_swap_answers_stay_true_while_the_leader_is_frozen(
    cluster: EtcdCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """One writer chains compare-and-swaps on one key, so every "failed" answer would be
    a lie about its own earlier write; whenever the store raises, reading tells the truth."""
    leader = cluster.leader()
    assert leader is not None
    first = [leader.endpoint, *(e for e in cluster.endpoints if e != leader.endpoint)]
    store = EtcdStore(first, timeout=0.5)
    truth = EtcdStore(cluster.endpoints)
    caplog.set_level(logging.INFO, "waypost.store.etcd")
    stop = threading.Event()
    pauser = threading.Thread(target=cluster.freeze_leaders, args=(stop, 8))
    pauser.start()
    applied = 0
    try:
        for _ in range(400):
            if not pauser.is_alive():
                break
            current = await truth.get("chain")
            value = str(applied + 1).encode()
            try:
                result = await store.txn(*_cas("chain", current, value))
            except StoreError:
                result = None
            kv = await truth.get("chain")
            wrote = kv is not None and kv.value == value
            assert wrote == (await truth.get(f"chain/log/{value.decode()}") is not None)
            if result is not None:
                assert result.succeeded == wrote
                assert not wrote or kv.mod_revision == result.revision  # type: ignore[union-attr]
            applied += wrote
        stop.set()
        pauser.join(10)
        await _cas_through_a_frozen_member(cluster, store, truth)
    finally:
        stop.set()
        pauser.join(10)
        await store.close()
        await truth.close()
    assert applied > 0
    assert "transaction interrupted" in caplog.text


async def _cas_through_a_frozen_member(cluster: EtcdCluster, store: EtcdStore, truth: EtcdStore) -> None:
    """Whether a leader's freeze interrupts a transaction is chance (the reads of ``truth``
    may be what waits it out), so end with one that surely does: the store's own member
    frozen for longer than its timeout while it sends a compare-and-swap."""
    before = cluster.txn_calls()
    await store.put("chain/probe", b"which member")
    member = cluster.written_through(before)
    assert member.process is not None
    current = await truth.get("chain")
    member.process.send_signal(signal.SIGSTOP)
    try:
        result = await store.txn(*_cas("chain", current, b"frozen"))
    except StoreError:
        result = None
    finally:
        member.process.send_signal(signal.SIGCONT)
    kv = await truth.get("chain")
    wrote = kv is not None and kv.value == b"frozen"
    if result is not None:
        assert result.succeeded == wrote
        assert not wrote or kv.mod_revision == result.revision  # type: ignore[union-attr]
