from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from waypost.sidekick.probes import accepts, probe_http, probe_tcp
from waypost.testing import free_port


async def _status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="body " * 2000)


async def _hang(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.Response()


@pytest.fixture
async def server() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/status/{code}", _status)
    app.router.add_get("/hang", _hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield port
    await runner.cleanup()


async def test_accepts_only_a_listening_port(server: int) -> None:
    assert await accepts(server, 2.0)
    assert not await accepts(free_port(), 2.0)


async def test_tcp_probe(server: int) -> None:
    assert await probe_tcp(server, 2.0) == ("passing", f"TCP connect 127.0.0.1:{server}: Success")
    closed = free_port()
    status, output = await probe_tcp(closed, 2.0)
    assert (status, output) == ("critical", f"dial tcp 127.0.0.1:{closed}: connection refused or timed out")


async def test_http_probe_verdicts_as_consul_gives_them(server: int) -> None:
    base = f"http://127.0.0.1:{server}"
    async with aiohttp.ClientSession() as session:
        status, output = await probe_http(session, f"{base}/status/200", 2.0)
        assert status == "passing"
        assert output.startswith(f"HTTP GET {base}/status/200: 200 OK Output: body body")
        assert len(output) < 4200  # the body is cut as Consul cuts it
        assert (await probe_http(session, f"{base}/status/429", 2.0))[0] == "warning"
        assert (await probe_http(session, f"{base}/status/503", 2.0))[0] == "critical"
        status, output = await probe_http(session, f"{base}/hang", 0.5)
        assert status == "critical"
        assert output == (
            f'Get "{base}/hang": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        )
        port = free_port()
        closed = f"http://127.0.0.1:{port}/health"
        status, output = await probe_http(session, closed, 2.0)
        assert (status, output) == (
            "critical",
            f'Get "{closed}": dial tcp 127.0.0.1:{port}: connect: connection refused',
        )
