"""The watcher in-process against a real agent and a scripted engine on a unix socket.

The scripted engine serves inspect JSON no real engine would (wrong types, odd exit
codes) and events on demand, to show the cases a real engine cannot produce at will:
malformed inspect data costs one container and never a worker, and ``-deregister
on-success`` tells a container killed by a signal from one that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from waypost.client import ApiClient
from waypost.registrator.engine import Engine
from waypost.registrator.services import Options
from waypost.registrator.watcher import Registrator, Settings
from waypost.testing import AgentProcess

PORTS = {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}


def inspect(cid: str, *, running: bool = True, exit_code: int = 0, **config: Any) -> dict[str, Any]:
    return {
        "Id": cid,
        "Name": f"/{cid}",
        "Config": {"Image": "web", "Env": [], **config},
        "State": {"Running": running, "ExitCode": exit_code},
        "NetworkSettings": {"Ports": PORTS, "Networks": {"podman": {"IPAddress": "10.88.0.9"}}},
    }


class ScriptedEngine:
    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Any]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def emit(self, cid: str, action: str) -> None:
        self.events.put_nowait({"Type": "container", "Action": action, "Actor": {"ID": cid}})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        while True:
            await resp.write(json.dumps(await self.events.get()).encode() + b"\n")

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response([{"Id": c} for c, v in self.containers.items() if v["State"]["Running"]])

    async def _inspect(self, request: web.Request) -> web.Response:
        found = self.containers.get(request.match_info["cid"])
        return web.json_response(found) if found else web.json_response({"message": "no such"}, status=404)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/events", self._events)
        app.router.add_get("/containers/json", self._list)
        app.router.add_get("/containers/{cid}/json", self._inspect)
        return app


@pytest.fixture
async def scripted(tmp_path: Path) -> AsyncIterator[tuple[ScriptedEngine, Path]]:
    engine = ScriptedEngine()
    runner = web.AppRunner(engine.app(), shutdown_timeout=0.1)
    await runner.setup()
    path = tmp_path / "engine.sock"
    await web.UnixSite(runner, str(path)).start()
    yield engine, path
    await runner.cleanup()


@contextlib.asynccontextmanager
async def registrator(socket: Path, agent: AgentProcess, host: str, **settings: Any) -> AsyncIterator[None]:
    api = ApiClient(agent.address)
    engine = Engine(f"unix://{socket}")
    task = asyncio.create_task(Registrator(engine, api, Settings(Options(hostname=host), **settings)).run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.close()
        await api.close()


async def ours(agent: AgentProcess, host: str) -> set[str]:
    services = await asyncio.to_thread(agent.get, "/v1/agent/services")
    return {k for k, v in services.items() if (v.get("Meta") or {}).get("registrator-host") == host}


async def _has(agent: AgentProcess, host: str, wanted: set[str]) -> bool:
    return await ours(agent, host) == wanted


async def until(predicate: Any, limit: float = 15.0) -> None:
    for _ in range(int(limit / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {limit}s")


async def test_malformed_inspect_json_costs_one_container(
    scripted: tuple[ScriptedEngine, Path], dev_agent: AgentProcess, caplog: pytest.LogCaptureFixture
) -> None:
    engine, socket = scripted
    engine.containers["odd"] = {**inspect("odd"), "NetworkSettings": {"Ports": {"80/tcp": "not a list"}}}
    engine.containers["odd-env"] = inspect("odd-env", Env=[7, None, "SERVICE_NAME"])
    async with registrator(socket, dev_agent, "w-bad", workers=1):
        engine.containers["good"] = inspect("good")
        engine.emit("good", "start")
        await until(lambda: _has(dev_agent, "w-bad", {"w-bad:good:80", "w-bad:odd-env:80"}))
    assert "container odd: unexpected error; skipped" in caplog.text


async def test_deregister_on_success_tells_signals_from_failures(
    scripted: tuple[ScriptedEngine, Path], dev_agent: AgentProcess
) -> None:
    engine, socket = scripted
    for cid in ("killed", "failed", "fine"):
        engine.containers[cid] = inspect(cid)
    async with registrator(socket, dev_agent, "w-os", deregister="on-success"):
        await until(lambda: _has(dev_agent, "w-os", {"w-os:killed:80", "w-os:failed:80", "w-os:fine:80"}))
        for cid, code in (("killed", 137), ("failed", 2), ("fine", 0)):
            engine.containers[cid] = inspect(cid, running=False, exit_code=code)
            engine.emit(cid, "die")
        await until(lambda: _has(dev_agent, "w-os", {"w-os:failed:80"}))
        del engine.containers["failed"]
        engine.emit("failed", "destroy")
        await until(lambda: _has(dev_agent, "w-os", set()))
