"""A client agent's ``?cached`` reads against a real server, through the relay a client
agent uses: MISS then HIT per read and token, ``Cache-Control: max-age``, and a refresh
that follows the server (the scenario through a client agent: tests/e2e/test_lean_client.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from waypost.agent.lean_cache import CachedReads
from waypost.api.http import Request, Response
from waypost.store.remote import NO_SERVERS
from waypost.testing import AgentProcess
from waypost.wan.forward import CLIENT_HOP, Forwarder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("lean-cache")) / "agent.log"
    with AgentProcess(["-dev", "-node", "hub"], log_path=log) as agent:
        yield agent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def reads(server: AgentProcess) -> AsyncIterator[tuple[CachedReads, Clock]]:
    relay = Forwarder()

    async def ask(req: Request) -> Response:
        return await relay.relay([server.url], req, CLIENT_HOP, None, NO_SERVERS)

    clock = Clock()
    cached = CachedReads(ask, clock)
    yield cached, clock
    await cached.close()
    await relay.close()


def _get(path: str, query: str, **headers: str) -> Request:
    return Request("GET", path, query, dict(headers), b"")


def _header(resp: Response, name: str) -> str:
    return next(v for k, v in resp.headers if k.lower() == name.lower())


def _register(server: AgentProcess, node: str) -> None:
    server.put("/v1/catalog/register", {"Node": node, "Address": "192.0.2.1", "Service": {"Service": "api"}})


async def test_a_read_is_a_miss_then_a_hit_per_query_and_token(
    server: AgentProcess, reads: tuple[CachedReads, Clock]
) -> None:
    cached, clock = reads
    _register(server, "n1")
    first = await cached.read(_get("/v1/health/service/api", "cached"))
    assert (_header(first, "X-Cache"), _header(first, "Age")) == ("MISS", "0")
    clock.now += 3
    hit = await cached.read(_get("/v1/health/service/api", "cached&pretty"))
    assert (_header(hit, "X-Cache"), _header(hit, "Age"), hit.body) == ("HIT", "3", first.body)
    other = await cached.read(_get("/v1/health/service/api", "cached&passing"))
    assert _header(other, "X-Cache") == "MISS"
    token = await cached.read(_get("/v1/health/service/api", "cached", **{"x-consul-token": "t"}))
    assert _header(token, "X-Cache") == "MISS"
    refused = await cached.read(_get("/v1/health/service/api", "cached", **{"cache-control": "max-age=1"}))
    assert _header(refused, "X-Cache") == "MISS"


async def test_an_entry_follows_the_server_and_a_cached_blocking_read_waits_for_it(
    server: AgentProcess, reads: tuple[CachedReads, Clock]
) -> None:
    cached, _ = reads
    _register(server, "n2")
    first = await cached.read(_get("/v1/catalog/service/api", "cached"))
    index = _header(first, "X-Consul-Index")
    blocked = asyncio.ensure_future(
        cached.read(_get("/v1/catalog/service/api", f"cached&index={index}&wait=20s"))
    )
    await asyncio.sleep(0.3)
    assert not blocked.done()
    await asyncio.get_running_loop().run_in_executor(None, _register, server, "n3")
    answer = await asyncio.wait_for(blocked, 20)
    assert _header(answer, "X-Cache") == "HIT"
    assert int(_header(answer, "X-Consul-Index")) > int(index)
    assert b"n3" in answer.body
