"""The one contract every backend keeps: etcd v3's semantics, checked against each.

Tests assume nothing about other keys or absolute revisions (the etcd backend is
shared), only about keys under their own ``ns`` prefix and revisions relative to their
own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from waypost.store.base import (
    CompactedError,
    Compare,
    Delete,
    Event,
    EventType,
    LeaseNotFoundError,
    Put,
    Range,
    RangeResult,
    Store,
    StoreError,
)
from waypost.store.etcd import EtcdStore
from waypost.store.memory import MemoryStore
from waypost.store.sqlite import SqliteStore

WAIT = 10.0
"""Upper bound on any single wait for a watch event or a lease to expire."""


@contextlib.asynccontextmanager
async def watching(store: Store, prefix: str, start: int) -> AsyncIterator[AsyncIterator[list[Event]]]:
    stream = store.watch(prefix, start)
    try:
        yield stream
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def take(stream: AsyncIterator[list[Event]], count: int) -> list[list[Event]]:
    return [await asyncio.wait_for(anext(stream), WAIT) for _ in range(count)]


async def compact(store: Store, revision: int) -> None:
    assert isinstance(store, MemoryStore | SqliteStore | EtcdStore)
    await store.compact(revision)


async def test_put_returns_increasing_revisions(store: Store, ns: str) -> None:
    first = await store.put(ns + "a", b"1")
    second = await store.put(ns + "b", b"2")
    assert first >= 1
    assert second == first + 1
    assert await store.revision() == second


async def test_create_mod_and_version(store: Store, ns: str) -> None:
    created = await store.put(ns + "k", b"1")
    modified = await store.put(ns + "k", b"2")
    kv = await store.get(ns + "k")
    assert kv is not None
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease) == (
        ns + "k",
        b"2",
        created,
        modified,
        2,
        0,
    )
    assert await store.get(ns + "missing") is None


async def test_delete_resets_version(store: Store, ns: str) -> None:
    await store.put(ns + "k", b"1")
    before = await store.put(ns + "k", b"2")
    assert await store.delete(ns + "k") == (1, before + 1)
    assert await store.get(ns + "k") is None
    recreated = await store.put(ns + "k", b"3")
    kv = await store.get(ns + "k")
    assert kv is not None
    assert (kv.create_revision, kv.mod_revision, kv.version) == (recreated, recreated, 1)


async def test_delete_of_nothing_keeps_revision(store: Store, ns: str) -> None:
    current = await store.put(ns + "k", b"1")
    assert await store.delete(ns + "absent") == (0, current)
    assert await store.delete(ns + "absent/", prefix=True) == (0, current)
    assert await store.revision() == current


async def test_delete_prefix_is_one_revision(store: Store, ns: str) -> None:
    for key in ("a/1", "a/2", "b"):
        last = await store.put(ns + key, b"x")
    async with watching(store, ns, last + 1) as stream:
        assert await store.delete(ns + "a/", prefix=True) == (2, last + 1)
        [batch] = await take(stream, 1)
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in batch] == [
        (EventType.DELETE, ns + "a/1", last + 1),
        (EventType.DELETE, ns + "a/2", last + 1),
    ]
    assert [kv.key for kv in (await store.range(ns)).kvs] == [ns + "b"]


async def test_range_prefix_is_sorted_by_key(store: Store, ns: str) -> None:
    keys = ["b", "a/x", "ab", "a", "a/\u00e9", "a/z", "a0", "c/a"]
    for key in keys:
        await store.put(ns + key, key.encode())
    result = await store.range(ns + "a")
    assert [kv.key for kv in result.kvs] == [ns + k for k in ["a", "a/x", "a/z", "a/\u00e9", "a0", "ab"]]
    assert result.revision == await store.revision()
    assert [kv.key for kv in (await store.range(ns + "a/")).kvs] == [
        ns + k for k in ["a/x", "a/z", "a/\u00e9"]
    ]
    assert (await store.range(ns + "nothing/")).kvs == []


async def test_range_everything_includes_all_keys(store: Store, ns: str) -> None:
    await store.put(ns + "one", b"1")
    keys = [kv.key for kv in (await store.range("")).kvs]
    assert ns + "one" in keys
    assert keys == sorted(keys, key=str.encode)


def _compare_cases(actual: int | bytes) -> list[tuple[str, int | bytes, bool]]:
    below: int | bytes
    above: int | bytes
    if isinstance(actual, bytes):
        below, above = actual[:-1] + b"1", actual[:-1] + b"3"
    else:
        below, above = actual - 1, actual + 1
    return [
        ("=", actual, True),
        ("=", above, False),
        ("!=", actual, False),
        ("!=", below, True),
        ("<", above, True),
        ("<", actual, False),
        (">", below, True),
        (">", actual, False),
    ]


async def test_txn_compares_every_target_and_operator(store: Store, ns: str) -> None:
    lease = await store.lease_grant(30)
    created = await store.put(ns + "k", b"v1")
    modified = await store.put(ns + "k", b"v2", lease=lease)
    actuals: dict[str, int | bytes] = {
        "value": b"v2",
        "version": 2,
        "create": created,
        "mod": modified,
        "lease": lease,
    }
    for target, actual in actuals.items():
        for op, value, expected in _compare_cases(actual):
            compare = Compare(ns + "k", target, op, value)  # type: ignore[arg-type]
            result = await store.txn([compare], [])
            assert result.succeeded is expected, (target, op, value)
    await store.lease_revoke(lease)


@pytest.mark.parametrize(
    ("target", "op", "value", "expected"),
    [
        ("version", "=", 0, True),
        ("create", "=", 0, True),
        ("mod", "=", 0, True),
        ("lease", "=", 0, True),
        ("version", ">", 0, False),
        ("value", "=", b"", False),
        ("value", "!=", b"x", False),
    ],
)
async def test_txn_compare_on_missing_key(
    store: Store, ns: str, target: str, op: str, value: int | bytes, expected: bool
) -> None:
    compare = Compare(ns + "missing", target, op, value)  # type: ignore[arg-type]
    assert (await store.txn([compare], [])).succeeded is expected


async def test_txn_runs_success_or_failure_branch(store: Store, ns: str) -> None:
    await store.put(ns + "k", b"1")
    await store.put(ns + "gone", b"x")
    ok = await store.txn(
        [Compare(ns + "k", "value", "=", b"1")],
        [Put(ns + "k", b"2"), Delete(ns + "gone"), Range(ns + "k")],
        [Put(ns + "failed", b"1")],
    )
    assert ok.succeeded
    assert ok.responses[0] == ok.revision
    assert ok.responses[1] == 1
    read = ok.responses[2]
    assert isinstance(read, RangeResult)
    assert [(kv.value, kv.mod_revision) for kv in read.kvs] == [(b"2", ok.revision)]
    assert await store.get(ns + "failed") is None

    failed = await store.txn(
        [Compare(ns + "k", "value", "=", b"1"), Compare(ns + "k", "version", "=", 2)],
        [Put(ns + "k", b"3")],
        [Put(ns + "failed", b"1"), Range(ns, prefix=True)],
    )
    assert not failed.succeeded
    assert failed.revision == ok.revision + 1
    listing = failed.responses[1]
    assert isinstance(listing, RangeResult)
    assert [kv.key for kv in listing.kvs] == [ns + "failed", ns + "k"]
    kv = await store.get(ns + "k")
    assert kv is not None
    assert kv.value == b"2"


async def test_txn_writes_share_one_revision(store: Store, ns: str) -> None:
    start = await store.put(ns + "old", b"x")
    async with watching(store, ns, start + 1) as stream:
        result = await store.txn(
            [], [Put(ns + "a", b"1"), Put(ns + "b", b"2"), Delete(ns + "old"), Put(ns + "c", b"3")]
        )
        assert result.revision == start + 1
        assert await store.revision() == start + 1
        [batch] = await take(stream, 1)
    assert [(e.type, e.kv.key) for e in batch] == [
        (EventType.PUT, ns + "a"),
        (EventType.PUT, ns + "b"),
        (EventType.DELETE, ns + "old"),
        (EventType.PUT, ns + "c"),
    ]
    assert {e.kv.mod_revision for e in batch} == {start + 1}


async def test_txn_without_writes_keeps_revision(store: Store, ns: str) -> None:
    current = await store.put(ns + "k", b"1")
    reads = await store.txn([], [Range(ns + "k"), Delete(ns + "absent")])
    assert reads.revision == current
    assert reads.responses[1] == 0
    assert await store.revision() == current


async def test_txn_rejects_writing_a_key_twice(store: Store, ns: str) -> None:
    current = await store.put(ns + "k", b"1")
    with pytest.raises(StoreError):
        await store.txn([], [Put(ns + "k", b"2"), Put(ns + "k", b"3")])
    with pytest.raises(StoreError):
        await store.txn([], [Put(ns + "a/k", b"2"), Delete(ns + "a/", prefix=True)])
    assert await store.revision() == current


async def test_watch_replays_history_then_streams_live(store: Store, ns: str) -> None:
    first = await store.put(ns + "a", b"1")
    await store.put(ns + "b", b"2")
    await store.delete(ns + "a")
    async with watching(store, ns, first) as stream:
        replayed = await take(stream, 3)
        live_revision = await store.put(ns + "c", b"3")
        [live] = await take(stream, 1)
    assert [[(e.type, e.kv.key, e.kv.mod_revision) for e in batch] for batch in replayed] == [
        [(EventType.PUT, ns + "a", first)],
        [(EventType.PUT, ns + "b", first + 1)],
        [(EventType.DELETE, ns + "a", first + 2)],
    ]
    assert [(e.type, e.kv.key, e.kv.value, e.kv.mod_revision) for e in live] == [
        (EventType.PUT, ns + "c", b"3", live_revision)
    ]


async def test_watch_delete_event_carries_key_and_revision(store: Store, ns: str) -> None:
    await store.put(ns + "k", b"1")
    await store.put(ns + "k", b"2")
    _, revision = await store.delete(ns + "k")
    async with watching(store, ns, revision) as stream:
        [[event]] = await take(stream, 1)
    assert event.type is EventType.DELETE
    kv = event.kv
    assert (kv.key, kv.value, kv.mod_revision, kv.version, kv.create_revision) == (
        ns + "k",
        b"",
        revision,
        0,
        0,
    )


async def test_watch_filters_by_prefix(store: Store, ns: str) -> None:
    start = await store.revision() + 1
    async with watching(store, ns + "want/", start) as stream:
        await store.put(ns + "other", b"x")
        await store.put(ns + "want/1", b"1")
        await store.put(ns + "wanted", b"x")
        await store.txn([], [Put(ns + "other2", b"x"), Put(ns + "want/2", b"2")])
        batches = await take(stream, 2)
    assert [[e.kv.key for e in batch] for batch in batches] == [[ns + "want/1"], [ns + "want/2"]]


async def test_watch_before_compaction_raises(store: Store, ns: str) -> None:
    old = await store.put(ns + "k", b"1")
    await store.put(ns + "k", b"2")
    kept = await store.put(ns + "k", b"3")
    await compact(store, kept)
    with pytest.raises(CompactedError) as raised:
        async with watching(store, ns, old) as stream:
            await take(stream, 1)
    assert raised.value.compact_revision == kept
    async with watching(store, ns, kept) as stream:
        [[event]] = await take(stream, 1)
    assert event.kv.value == b"3"


async def test_put_with_unknown_lease_fails(store: Store, ns: str) -> None:
    current = await store.put(ns + "k", b"1")
    with pytest.raises(LeaseNotFoundError):
        await store.put(ns + "leased", b"x", lease=987654321)
    with pytest.raises(LeaseNotFoundError):
        await store.txn([], [Put(ns + "other", b"x"), Put(ns + "leased", b"x", lease=987654321)])
    assert await store.get(ns + "other") is None
    assert await store.revision() == current


@pytest.mark.parametrize("ttl", [0, -5, float("nan"), float("inf")])
async def test_a_lease_ttl_that_is_not_positive_is_refused_as_bad_input(store: Store, ttl: float) -> None:
    with pytest.raises(ValueError, match="lease TTL must be a positive number of seconds"):
        await store.lease_grant(ttl)


async def test_lease_expiry_deletes_keys_in_one_revision(store: Store, ns: str) -> None:
    lease = await store.lease_grant(1)
    await store.put(ns + "a", b"1", lease=lease)
    start = await store.put(ns + "b", b"2", lease=lease)
    kv = await store.get(ns + "a")
    assert kv is not None
    assert kv.lease == lease
    async with watching(store, ns, start + 1) as stream:
        [batch] = await take(stream, 1)
    assert sorted((e.type, e.kv.key) for e in batch) == [
        (EventType.DELETE, ns + "a"),
        (EventType.DELETE, ns + "b"),
    ]
    assert len({e.kv.mod_revision for e in batch}) == 1
    assert (await store.range(ns)).kvs == []
    with pytest.raises(LeaseNotFoundError):
        await store.lease_keepalive(lease)


async def test_keepalive_extends_lease(store: Store, ns: str) -> None:
    lease = await store.lease_grant(1)
    start = await store.put(ns + "k", b"1", lease=lease)
    for _ in range(8):
        await asyncio.sleep(0.25)
        assert await store.lease_keepalive(lease) >= 1
    assert await store.get(ns + "k") is not None
    async with watching(store, ns, start + 1) as stream:
        [[event]] = await take(stream, 1)
    assert (event.type, event.kv.key) == (EventType.DELETE, ns + "k")


async def test_revoke_deletes_keys_and_forgets_lease(store: Store, ns: str) -> None:
    lease = await store.lease_grant(60)
    other = await store.lease_grant(60)
    await store.put(ns + "a", b"1", lease=lease)
    await store.put(ns + "moved", b"1", lease=lease)
    start = await store.put(ns + "moved", b"2", lease=other)
    async with watching(store, ns, start + 1) as stream:
        await store.lease_revoke(lease)
        [batch] = await take(stream, 1)
    assert [(e.type, e.kv.key) for e in batch] == [(EventType.DELETE, ns + "a")]
    assert [kv.key for kv in (await store.range(ns)).kvs] == [ns + "moved"]
    await store.lease_revoke(lease)
    with pytest.raises(LeaseNotFoundError):
        await store.lease_keepalive(lease)
    with pytest.raises(LeaseNotFoundError):
        await store.put(ns + "b", b"x", lease=lease)
    await store.lease_revoke(other)


async def test_revoking_a_lease_without_keys_keeps_revision(store: Store, ns: str) -> None:
    current = await store.put(ns + "k", b"1")
    lease = await store.lease_grant(60)
    await store.lease_revoke(lease)
    assert await store.revision() == current


async def test_watch_ends_when_the_store_closes(store: Store, ns: str) -> None:
    stream = store.watch(ns, 0)
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)
