"""The forwarder against a real HTTP server on loopback: the request arrives as it was
sent, the answer comes back with Consul's headers, unreachable servers are skipped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from waypost.api.http import HttpServer, Request, Response
from waypost.testing import free_port
from waypost.wan.forward import FORWARDED_HEADER, SERVER_HOP, Forwarder, forward_timeout


def echo(req: Request) -> Response:
    seen = {
        "method": req.method, "path": req.path, "query": req.raw_query, "body": req.body.decode(),
        "token": req.headers.get("x-consul-token"), "hop": req.headers.get(FORWARDED_HEADER.lower()),
        "type": req.headers.get("content-type"),
    }  # fmt: skip
    headers = [("X-Consul-Index", "42"), ("X-Consul-KnownLeader", "true")]
    return Response(json.dumps(seen).encode(), 201 if req.method == "PUT" else 200, headers=headers)


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    server = HttpServer(echo)
    port = await server.listen("127.0.0.1", 0)
    yield f"http://127.0.0.1:{port}"
    await server.close()


@pytest.fixture
async def forwarder() -> AsyncIterator[Forwarder]:
    fwd = Forwarder()
    yield fwd
    await fwd.close()


async def test_a_read_arrives_as_sent_and_its_answer_keeps_consuls_headers(
    upstream: str, forwarder: Forwarder
) -> None:
    req = Request("GET", "/v1/kv/a b/ü", "dc=dc2&index=7&wait=1s", {"x-consul-token": "t0k"}, b"")
    resp = await forwarder.relay([upstream], req, SERVER_HOP)
    assert resp.status == 200
    assert ("X-Consul-Index", "42") in resp.headers
    assert ("X-Consul-KnownLeader", "true") in resp.headers
    assert not any(k.lower() in ("date", "content-length", "content-type") for k, _ in resp.headers)
    seen = json.loads(resp.body)
    assert seen == {
        "method": "GET", "path": "/v1/kv/a b/ü", "query": "dc=dc2&index=7&wait=1s", "body": "",
        "token": "t0k", "hop": SERVER_HOP, "type": None,
    }  # fmt: skip


async def test_a_write_carries_its_body_and_status(upstream: str, forwarder: Forwarder) -> None:
    req = Request("PUT", "/v1/kv/k", "dc=dc2&cas=0", {"content-type": "text/plain"}, b"value")
    resp = await forwarder.relay([upstream], req, SERVER_HOP)
    assert resp.status == 201
    seen = json.loads(resp.body)
    assert (seen["body"], seen["query"], seen["type"]) == ("value", "dc=dc2&cas=0", "text/plain")


async def test_an_unreachable_server_passes_the_request_to_the_next(
    upstream: str, forwarder: Forwarder
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    req = Request("PUT", "/v1/kv/k", "dc=dc2", {}, b"v")
    resp = await forwarder.relay([dead, upstream], req, SERVER_HOP)
    assert resp.status == 201


async def test_no_reachable_server_is_no_path_to_the_datacenter(forwarder: Forwarder) -> None:
    req = Request("GET", "/v1/catalog/nodes", "dc=dc2", {}, b"")
    resp = await forwarder.relay([f"http://127.0.0.1:{free_port()}"], req, SERVER_HOP)
    assert (resp.status, resp.body) == (500, b"No path to datacenter")
    assert (await forwarder.relay([], req, SERVER_HOP)).body == b"No path to datacenter"


async def test_a_client_that_leaves_cancels_the_forwarded_blocking_query(forwarder: Forwarder) -> None:
    parked: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
    server = HttpServer(lambda req: parked)
    port = await server.listen("127.0.0.1", 0)
    try:
        req = Request("GET", "/v1/catalog/nodes", "index=5&wait=10m", {}, b"")
        task = asyncio.ensure_future(forwarder.relay([f"http://127.0.0.1:{port}"], req, SERVER_HOP))
        for _ in range(100):
            if server.conns:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if parked.cancelled():
                break
            await asyncio.sleep(0.01)
        assert parked.cancelled()
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("query", "seconds"),
    [("", 60.0), ("index=3", 300 + 300 / 16 + 10), ("index=3&wait=16s", 16 + 1 + 10),
     ("index=3&wait=1h", 600 + 600 / 16 + 10), ("index=3&wait=bogus", 300 + 300 / 16 + 10)],
)  # fmt: skip
def test_a_blocking_query_may_take_its_whole_wait_remotely(query: str, seconds: float) -> None:
    assert forward_timeout(Request("GET", "/v1/kv/k", query, {}, b"")) == pytest.approx(seconds)
