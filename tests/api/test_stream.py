"""The /v1/stream adapter over a real state: the hub follows the state's change feed, and the
pump pings idle streams, ends closed ones and hangs up on readers that fell behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from waypost.api import stream
from waypost.api.http import Request
from waypost.state import kv_ops
from waypost.state.state import State
from waypost.store.memory import MemoryStore
from waypost.stream.subscriber import Subscriber


@pytest.fixture
async def state() -> AsyncIterator[State]:
    st = State(MemoryStore())
    await st.start()
    yield st
    await st.close()


def reader(state: State, prefix: str = "app/", limit: int = 1 << 20) -> Subscriber:
    sub = Subscriber(stream.hub_of(state).topic("kv", prefix, state.indexes), limit=limit)
    sub.start(state.indexes)
    return sub


async def test_the_hub_follows_the_states_change_feed(state: State) -> None:
    assert stream.hub_of(state) is stream.hub_of(state)
    sub = reader(state)
    assert sub.take().endswith(b'data: {"Index":%d}\n\n' % state.indexes.revision)
    await kv_ops.kv_set(state, "app/a", b"1")
    await kv_ops.kv_set(state, "elsewhere", b"2")
    framed = sub.take()
    assert framed.startswith(b"event: upsert\nid: %d\n" % state.indexes.kv["app/a"].ModifyIndex)
    assert b'"Key":"app/a"' in framed
    assert sub.take() == b""


async def test_the_pump_pings_an_idle_stream_and_ends_once_its_reader_is_closed(
    state: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "PING", 0.05)
    sub = reader(state)
    pump = stream._pump(stream.hub_of(state), sub, Request("GET", "/v1/stream/kv/app/", "", {}, b""))
    async with asyncio.timeout(10):
        assert b"end-of-snapshot" in await anext(pump)
        assert await anext(pump) == b": ping\n\n"
        sub.close()
        sub.wake()
        with pytest.raises(StopAsyncIteration):
            await anext(pump)


async def test_the_pump_hangs_up_on_a_reader_that_fell_too_far_behind(state: State) -> None:
    hub = stream.hub_of(state)
    before = hub.cut_off
    sub = reader(state, limit=10_000)
    req = Request("GET", "/v1/stream/kv/app/", "", {}, b"")
    hung: list[bool] = []
    req.hangup = lambda: hung.append(True)
    pump = stream._pump(hub, sub, req)
    async with asyncio.timeout(10):
        await anext(pump)  # the snapshot; then the reader stops pulling
        for i in range(5):
            await kv_ops.kv_set(state, f"app/{i}", b"x" * 4000)
    assert hung == [True]
    assert hub.cut_off == before + 1
    assert sub.closed
    await pump.aclose()
