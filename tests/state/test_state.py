from __future__ import annotations

import asyncio
import logging

import msgspec
import pytest

from waypost.state import catalog_ops, kv_ops, schema
from waypost.state.model import Graveyard, KVEntry, Node
from waypost.state.state import State
from waypost.store.base import Put
from waypost.store.memory import MemoryStore

BAD_NODE = msgspec.msgpack.encode({"Node": "bad", "TaggedAddresses": {"wan": 1}})


async def test_a_bad_record_does_not_stop_the_feed_or_the_writers_behind_it(
    state: State, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="waypost.state")
    result = await state.store.txn([], [Put(schema.NODES.key("bad"), BAD_NODE)])
    await asyncio.wait_for(state.wait_applied(result.revision), 5)
    assert await asyncio.wait_for(kv_ops.kv_set(state, "after", b"v"), 5)
    await asyncio.wait_for(catalog_ops.register(state, Node(Node="good", Address="10.0.0.2")), 5)
    assert state.indexes.kv["after"].Value == b"v"
    assert sorted(state.indexes.nodes) == ["good"]
    assert state.decode_errors == 1
    assert state.indexes.quarantined == {"catalog/nodes/bad": result.revision}
    assert f"catalog/nodes/bad at revision {result.revision}" in caplog.text


async def test_start_up_skips_undecodable_records_and_names_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="waypost.state")
    store = MemoryStore()
    await store.txn(
        [],
        [
            Put(schema.NODES.key("bad"), BAD_NODE),
            Put("catalog/services/nodeonly", b"\x80"),
            Put(schema.NODES.key("good"), schema.encode(Node(Node="good"))),
        ],
    )
    state = State(store)
    await asyncio.wait_for(state.start(), 5)
    try:
        assert list(state.indexes.nodes) == ["good"]
        assert "skipping 2 undecodable records" in caplog.text
        assert "catalog/nodes/bad (Expected `str`, got `int`" in caplog.text
        assert "catalog/services/nodeonly (malformed services key)" in caplog.text
        assert state.decode_errors == 2
        assert await asyncio.wait_for(kv_ops.kv_set(state, "k", b"v"), 5)
        # Overwriting the bad record with a good one lifts its quarantine.
        await catalog_ops.register(state, Node(Node="bad", Address="10.0.0.3"))
        assert state.indexes.nodes["bad"].Address == "10.0.0.3"
        assert list(state.indexes.quarantined) == ["catalog/services/nodeonly"]
    finally:
        await state.close()


async def test_the_reap_index_survives_a_restart_so_prefix_indexes_hold() -> None:
    store = MemoryStore()
    await store.txn([], [Put(schema.KVS.key("app/a"), schema.encode(KVEntry(Key="app/a")))])
    reaped = await store.txn([], [Put(schema.GRAVEYARD_KEY, schema.encode(Graveyard(ReapIndex=7)))])
    state = State(store)
    await asyncio.wait_for(state.start(), 5)
    try:
        assert state.indexes.kv_reaped_index == 7
        assert state.indexes.kv_prefix_index("app/") == 7
        assert state.indexes.graveyard == Graveyard(
            ReapIndex=7, CreateIndex=reaped.revision, ModifyIndex=reaped.revision
        )
    finally:
        await state.close()
