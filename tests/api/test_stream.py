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
from waypost.stream.subscriber import Subscriber


def reader(state: State, prefix: str = "app/", limit: int = 1 << 20) -> Subscriber:
    return Subscriber(stream.hub_of(state).topic("kv", prefix, state.indexes), limit=limit)


def pump(state: State, sub: Subscriber, req: Request | None = None) -> AsyncIterator[bytes]:
    req = req or Request("GET", "/v1/stream/kv/app/", "", {}, b"")
    return stream._pump(stream.hub_of(state), sub, req, lambda: sub.start(state.indexes))


async def test_the_hub_follows_the_states_change_feed(state: State) -> None:
    assert stream.hub_of(state) is stream.hub_of(state)
    sub = reader(state)
    sub.start(state.indexes)
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
    events = pump(state, sub)
    async with asyncio.timeout(10):
        assert b"end-of-snapshot" in await anext(events)
        assert await anext(events) == b": ping\n\n"
        sub.close()
        sub.wake()
        with pytest.raises(StopAsyncIteration):
            await anext(events)


async def test_the_pump_hangs_up_on_a_reader_that_fell_too_far_behind(state: State) -> None:
    hub = stream.hub_of(state)
    before = hub.cut_off
    sub = reader(state, limit=10_000)
    req = Request("GET", "/v1/stream/kv/app/", "", {}, b"")
    hung: list[bool] = []
    req.hangup = lambda: hung.append(True)
    events = pump(state, sub, req)
    async with asyncio.timeout(10):
        await anext(events)  # the snapshot; then the reader stops pulling
        for i in range(5):
            await kv_ops.kv_set(state, f"app/{i}", b"x" * 4000)
    assert hung == [True]
    assert hub.cut_off == before + 1
    assert sub.closed
    await events.aclose()  # type: ignore[attr-defined]


async def test_a_stream_never_started_subscribes_nothing(state: State) -> None:
    sub = reader(state)
    topic = stream.hub_of(state).topic("kv", "app/", state.indexes)
    events = pump(state, sub)
    assert sub not in topic.listeners
    await events.aclose()  # type: ignore[attr-defined]
    assert sub not in topic.listeners
    started = pump(state, sub)
    await anext(started)
    assert sub in topic.listeners
    await started.aclose()  # type: ignore[attr-defined]
    assert sub not in topic.listeners
