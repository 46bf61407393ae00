"""The agent's HTTP client against real sockets: small asyncio servers on 127.0.0.1 that
answer as the test scripts them, counting connections and requests."""

from __future__ import annotations

import asyncio
import errno
import io
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from tests.tls_certs import Certs, make_certs

from waypost.http_client import ConnectError, HttpClient, ProtocolError

Handler = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]
"""Answers request number n of a connection (0-based); False closes the connection."""


class Server:
    """Reads whole requests (head and Content-Length body) and hands each to ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()
        self.closes = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for n in range(100):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                self.requests.append(head + await reader.readexactly(length))
                if not await self.handler(n, head, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.closes += 1
            self.closed.set()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient(connect_timeout=5.0)
    yield http
    await http.close()


async def _ok(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nX-Consul-Index: 7\r\nContent-Length: 5\r\n\r\nhello")
    return True


async def test_answers_reuse_one_kept_connection(client: HttpClient) -> None:
    server = await Server(_ok).start()
    for _ in range(3):
        resp = await client.request("GET", server.url("/v1/kv/a?raw"), headers=[("X-Consul-Token", "t")])
        assert (resp.status, resp.reason, await resp.read()) == (200, "OK", b"hello")
        assert resp.header("x-consul-index") == "7"
        assert ("X-Consul-Index", "7") in resp.headers  # names keep their case for relays
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"GET /v1/kv/a?raw HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}".encode() in first
    assert b"X-Consul-Token: t" in first
    await server.stop()


async def test_bodies_carry_their_length(client: HttpClient) -> None:
    server = await Server(_ok).start()
    await (await client.request("PUT", server.url(), body=b"x" * 100_000)).read()
    await (await client.request("POST", server.url())).read()
    spooled = io.BytesIO(b"skip:snapshot")
    spooled.seek(5)
    await (await client.request("PUT", server.url(), body=spooled)).read()
    assert server.requests[0].endswith(b"Content-Length: 100000\r\n\r\n" + b"x" * 100_000)
    assert server.requests[1].endswith(b"Content-Length: 0\r\n\r\n")
    assert server.requests[2].endswith(b"Content-Length: 8\r\n\r\nsnapshot")
    await server.stop()


async def test_without_keep_alive_each_request_has_its_own_connection() -> None:
    server = await Server(_ok).start()
    http = HttpClient(keep_alive=False)
    for _ in range(2):
        await (await http.request("GET", server.url(), headers=[("Host", "svc.example")])).read()
    with pytest.raises(ValueError, match="newline"):
        await http.request("GET", server.url(), headers=[("X-Evil", "a\r\nInjected: 1")])
    await http.close()
    for _ in range(100):  # each closed by the client once answered
        if server.closes == 2:
            break
        await asyncio.sleep(0.05)
    assert (server.connections, server.closes) == (2, 2)
    assert b"Connection: close" in server.requests[0]
    assert b"Host: svc.example" in server.requests[0]
    assert b"Host: 127.0.0.1" not in server.requests[0]  # the caller's Host replaces the URL's
    await server.stop()


async def test_a_dropped_kept_connection_resends_only_idempotent_methods(client: HttpClient) -> None:
    async def first_only(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        if n:
            return False  # as a server that timed the idle connection out just as it was reused
        return await _ok(n, head, writer)

    server = await Server(first_only).start()
    for _ in range(2):
        assert await (await client.request("GET", server.url())).read() == b"hello"
    assert (server.connections, len(server.requests)) == (2, 3)  # the second GET, once more

    with pytest.raises(ProtocolError, match="Server disconnected"):
        await client.request("POST", server.url(), body=b"{}")  # on the kept second connection
    assert len(server.requests) == 4  # the POST was not sent again: it may have applied

    answers = await asyncio.gather(*(client.request("GET", server.url()) for _ in range(2)))
    for resp in answers:
        await resp.read()  # two connections kept, both to be dropped when reused
    assert await (await client.request("GET", server.url())).read() == b"hello"
    assert server.connections == 5  # sent again on a new connection, not on the other kept one
    await server.stop()


async def test_a_refused_connection_is_a_connect_error(client: HttpClient) -> None:
    server = await Server(_ok).start()
    url = server.url()
    await server.stop()
    await asyncio.sleep(0)
    with pytest.raises(ConnectError) as caught:
        await client.request("GET", url)
    assert caught.value.cause.errno == errno.ECONNREFUSED
    assert not caught.value.tls
    assert isinstance(caught.value, OSError)


async def test_no_answer_within_the_total_is_a_timeout_not_a_connect_error(client: HttpClient) -> None:
    async def silent(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    server = await Server(silent).start()
    with pytest.raises(TimeoutError) as caught:
        await client.request("GET", server.url(), total=0.2)
    assert not isinstance(caught.value, ConnectError)
    await server.stop()


async def test_a_stream_arrives_chunk_by_chunk_and_its_silence_is_bounded(client: HttpClient) -> None:
    more = asyncio.Event()

    async def stream(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        writer.write(b"6\r\nevent1\r\n")
        await more.wait()
        writer.write(b"6\r\nevent2\r\n")
        await asyncio.sleep(5)
        return False

    server = await Server(stream).start()
    resp = await client.request("GET", server.url("/v1/stream/x"), read_timeout=0.3)
    chunks = resp.chunks()
    assert await anext(chunks) == b"event1"  # before the server sent anything more
    more.set()
    assert await anext(chunks) == b"event2"
    with pytest.raises(TimeoutError):
        await anext(chunks)
    await asyncio.wait_for(server.closed.wait(), 5)  # the connection was closed, not kept
    await server.stop()


async def test_a_body_without_length_ends_with_the_connection(client: HttpClient) -> None:
    async def until_close(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\n\r\npart one, ")
        await writer.drain()
        writer.write(b"part two")
        return False

    server = await Server(until_close).start()
    resp = await client.request("GET", server.url())
    assert await resp.read() == b"part one, part two"
    await server.stop()


async def test_not_http_is_a_protocol_error(client: HttpClient) -> None:
    async def garbage(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        return True

    server = await Server(garbage).start()
    with pytest.raises(ProtocolError, match="not an HTTP answer"):
        await client.request("GET", server.url())
    await server.stop()


async def test_idle_connections_are_closed_after_the_idle_timeout() -> None:
    server = await Server(_ok).start()
    http = HttpClient(idle_timeout=0.2)
    await (await http.request("GET", server.url())).read()
    await asyncio.wait_for(server.closed.wait(), 5)
    await (await http.request("GET", server.url())).read()
    assert server.connections == 2
    await http.close()
    await server.stop()


@pytest.fixture(scope="module")
def certs() -> Certs:
    with tempfile.TemporaryDirectory() as tmp:
        yield make_certs(Path(tmp))


async def test_tls_checks_the_name_asked_for(certs: Certs) -> None:
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(*certs.pair("server"))
    server = await Server(_ok).start(serving)
    http = HttpClient(tls=certs.client_context(None), connect_timeout=5.0)
    url = server.url(scheme="https")
    resp = await http.request("GET", url, server_hostname="server.dc1.consul")
    assert await resp.read() == b"hello"
    with pytest.raises(ConnectError) as caught:
        await http.request("GET", url, server_hostname="server.dc2.consul")
    assert caught.value.tls
    assert "certificate verify failed" in str(caught.value)
    await http.close()
    unverified = HttpClient()
    assert await (await unverified.request("GET", url)).read() == b"hello"
    await unverified.close()
    await server.stop()
