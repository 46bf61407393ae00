"""A client agent's background-refresh entries behind ``api.caching.AgentCache``, against a
real server through the relay a client agent uses: MISS then HIT per read and token, Age 0
while the refresh reaches the server (``max-age`` ignored, as Consul ignores it on these),
and a refresh that follows the server (the scenario through a client agent:
tests/e2e/test_lean_client.py; a server lost: tests/e2e/test_cached_outage.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from waypost.agent.lean_cache import RefreshedReads
from waypost.api.caching import CACHED_ROUTES, AgentCache
from waypost.api.http import Request, Response
from waypost.store.remote import NO_SERVERS
from waypost.testing import AgentProcess, ManualClock
from waypost.wan.forward import CLIENT_HOP, Forwarder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("lean-cache")) / "agent.log"
    with AgentProcess(["-dev", "-node", "hub"], log_path=log) as agent:
        yield agent


@pytest.fixture
async def reads(server: AgentProcess) -> AsyncIterator[tuple[AgentCache, ManualClock]]:
    relay = Forwarder()

    async def ask(req: Request) -> Response:
        return await relay.relay([server.url], req, CLIENT_HOP, None, NO_SERVERS)

    clock = ManualClock()
    source = RefreshedReads(ask, clock)
    yield AgentCache(lambda: 0.0, source=source, clock=clock), clock
    await source.close()
    await relay.close()


def _unused() -> Response:
    raise AssertionError("a background read is the entries' to answer, never the handler's")


async def _read(cache: AgentCache, route: str, path: str, query: str, **headers: str) -> Response:
    req = Request("GET", path, query, dict(headers), b"")
    answer = cache.through(CACHED_ROUTES[route], req, _unused, relayed=True)
    return answer if isinstance(answer, Response) else await answer


def _header(resp: Response, name: str) -> str:
    return next(v for k, v in resp.headers if k.lower() == name.lower())


def _register(server: AgentProcess, node: str) -> None:
    server.put("/v1/catalog/register", {"Node": node, "Address": "192.0.2.1", "Service": {"Service": "api"}})


async def _first(server: AgentProcess, cache: AgentCache, node: str, route: str) -> tuple[str, Response]:
    """A node of service ``api`` registered, and the first (MISS) read of ``route`` for it."""
    _register(server, node)
    path = route.rpartition("/")[0] + "/api"
    first = await _read(cache, route, path, "cached")
    assert _header(first, "X-Cache") == "MISS"
    return path, first


async def test_a_read_is_a_miss_then_a_hit_per_query_and_token(
    server: AgentProcess, reads: tuple[AgentCache, ManualClock]
) -> None:
    cache, clock = reads
    path, first = await _first(server, cache, "n1", route := "/v1/health/service/:service")
    clock.now += 3
    hit = await _read(cache, route, path, "cached&pretty", **{"cache-control": "max-age=1"})
    assert (_header(hit, "X-Cache"), _header(hit, "Age"), hit.body) == ("HIT", "0", first.body)
    other = await _read(cache, route, path, "cached&passing")
    assert _header(other, "X-Cache") == "MISS"
    token = await _read(cache, route, path, "cached", **{"x-consul-token": "t"})
    assert _header(token, "X-Cache") == "MISS"
    bad = await _read(cache, route, path, "cached", **{"cache-control": "max-age=x"})
    assert (bad.status, bad.body) == (400, b"Invalid Cache-Control header.")


async def test_an_entry_follows_the_server_and_a_cached_blocking_read_waits_for_it(
    server: AgentProcess, reads: tuple[AgentCache, ManualClock]
) -> None:
    cache = reads[0]
    path, first = await _first(server, cache, "n2", route := "/v1/catalog/service/:name")
    index = _header(first, "X-Consul-Index")
    blocked = asyncio.ensure_future(_read(cache, route, path, f"cached&index={index}&wait=20s"))
    await asyncio.sleep(0.3)
    assert not blocked.done()
    await asyncio.get_running_loop().run_in_executor(None, _register, server, "n3")
    answer = await asyncio.wait_for(blocked, 20)
    assert _header(answer, "X-Cache") == "MISS"  # it had to wait for the change, as Consul counts it
    assert int(_header(answer, "X-Consul-Index")) > int(index)
    assert b"n3" in answer.body
