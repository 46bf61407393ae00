"""The Engine API client against a real server (unix socket or TCP) that frames its answers
the awkward ways engines do: events split mid-object, several per chunk, no newlines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from waypost.registrator.engine import Engine, EngineError, event_action
from waypost.testing import free_port

EVENTS = [
    {"Type": "container", "Action": "start", "Actor": {"ID": "aaa"}},
    {"status": "die", "id": "bbb"},
    {"Type": "container", "Action": "health_status: healthy", "Actor": {"ID": "ccc"}},
]


async def _events(request: web.Request) -> web.StreamResponse:
    assert json.loads(request.query["filters"]) == {"type": ["container"]}
    resp = web.StreamResponse()
    await resp.prepare(request)
    wire = "".join(json.dumps(e) for e in EVENTS[:2]) + "\n" + json.dumps(EVENTS[2])
    for cut in (5, 40, len(wire)):
        await resp.write(wire[:cut].encode())
        wire = wire[cut:]
        await asyncio.sleep(0.01)
    return resp


async def _inspect(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name == "known":
        return web.json_response({"Id": "known", "Name": "/known"})
    if name == "broken":
        return web.Response(status=500, text="engine trouble")
    return web.json_response({"message": "no such container"}, status=404)


async def _list(request: web.Request) -> web.Response:
    return web.json_response([{"Id": "x"}, {"Id": "y"}, "junk"])


@pytest.fixture(params=["unix", "tcp"])
async def host(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The engine's address as DOCKER_HOST spells it: a unix socket or tcp://127.0.0.1."""
    app = web.Application()
    app.router.add_get("/events", _events)
    app.router.add_get("/containers/{name}/json", _inspect)
    app.router.add_get("/containers/json", _list)
    runner = web.AppRunner(app)
    await runner.setup()
    if request.param == "unix":
        path = tmp_path / "engine.sock"
        await web.UnixSite(runner, str(path)).start()
        yield f"unix://{path}"
    else:
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"tcp://127.0.0.1:{port}"
    await runner.cleanup()


async def test_events_are_read_whatever_the_framing(host: str) -> None:
    engine = Engine(host)
    try:
        got = [event async for event in engine.events()]
    finally:
        await engine.close()
    assert got == [{}, *EVENTS]
    assert [event_action(e) for e in EVENTS] == [("aaa", "start"), ("bbb", "die"), ("ccc", "health_status")]


async def test_inspect_list_and_errors(host: str) -> None:
    engine = Engine(host)
    try:
        assert await engine.inspect("known") == {"Id": "known", "Name": "/known"}
        assert await engine.inspect("gone") is None
        with pytest.raises(EngineError, match="500 engine trouble"):
            await engine.inspect("broken")
        assert await engine.running() == ["x", "y"]
    finally:
        await engine.close()


async def test_unreachable_engine_and_bad_host(tmp_path: Path) -> None:
    engine = Engine(f"unix://{tmp_path}/absent.sock")
    try:
        with pytest.raises(EngineError, match="unreachable"):
            await engine.running()
        with pytest.raises(EngineError, match="event stream"):
            [e async for e in engine.events()]
    finally:
        await engine.close()
    with pytest.raises(EngineError, match="unable to parse docker host `ssh://x`"):
        Engine("ssh://x")
