"""The HTTP adapter: its parsing, and how it answers when a handler fails."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable
from urllib.parse import parse_qs, quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tls_certs import Certs, make_certs
from waypost.api.http import HttpLimits, HttpServer, Request, Response, _decode_path, _parse_query


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=6), st.booleans())
def test_query_parsing_matches_the_standard_library(pairs: list[tuple[str, str]], bare: bool) -> None:
    raw = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    if bare:
        raw += "&recurse"
    assert _parse_query(raw) == parse_qs(raw, keep_blank_values=True)


@contextlib.asynccontextmanager
async def _serving(server: HttpServer) -> AsyncIterator[int]:
    """``server`` listening on a free loopback port for the block; closed after it."""
    port = await server.listen("127.0.0.1", 0)
    try:
        yield port
    finally:
        await server.close()


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def _failing_stream() -> AsyncIterator[bytes]:
    yield b"first"
    raise RuntimeError("stream broke")


def _handler(req: Request) -> Response | Awaitable[Response]:
    """A stand-in for the API: the server under test is real, this only decides what fails."""
    if req.path == "/raise":
        raise RuntimeError("handler bug")
    if req.path == "/raise-later":

        async def later() -> Response:
            await asyncio.sleep(0)
            raise RuntimeError("async handler bug")

        return later()
    if req.path == "/stream":
        return Response(stream=_failing_stream())
    return Response.text(f"ok {req.path}")


async def test_handler_exceptions_answer_500_and_keep_the_connection() -> None:
    async with _serving(HttpServer(_handler)) as port:
        answer = await _exchange(
            port,
            b"GET /raise HTTP/1.1\r\n\r\nGET /raise-later HTTP/1.1\r\n\r\n"
            b"GET /after HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
    assert answer.count(b"HTTP/1.1 500 Internal Server Error\r\n") == 2
    assert answer.count(b"\r\n\r\ninternal error") == 2
    assert answer.endswith(b"\r\n\r\nok /after")


async def test_head_answers_carry_the_length_but_no_body() -> None:
    """Pipelined, so a body sent by mistake would show up as garbage before the next answer."""
    async with _serving(HttpServer(_handler)) as port:
        answer = await _exchange(
            port,
            b"HEAD /x HTTP/1.1\r\n\r\nHEAD /raise-later HTTP/1.1\r\n\r\n"
            b"GET /after HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
    ok, failed, after = answer.split(b"HTTP/1.1 ")[1:]
    assert ok.startswith(b"200 OK\r\n")
    assert ok.endswith(b"Content-Length: 5\r\n\r\n")
    assert failed.startswith(b"500 ")
    assert failed.endswith(b"Content-Length: 14\r\n\r\n")
    assert after.endswith(b"\r\n\r\nok /after")


async def test_a_failing_stream_hangs_up_that_client_only() -> None:
    async with _serving(HttpServer(_handler)) as port:
        broken = await _exchange(port, b"GET /stream HTTP/1.1\r\n\r\n")
        fine = await _exchange(port, b"GET /next HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert broken.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"5\r\nfirst\r\n" in broken
    assert not broken.endswith(b"0\r\n\r\n")  # no clean end: the client sees the body cut short
    assert fine.endswith(b"\r\n\r\nok /next")


def test_paths_must_be_printable_utf8() -> None:
    assert _decode_path(b"/v1/kv/a%20b%E2%9C%93") == "/v1/kv/a b\u2713"
    assert _decode_path(b"/v1/kv/%ff") is None
    assert _decode_path(b"/v1/kv/a%00") is None
    assert _decode_path(b"/v1/kv/a%C2%A0b") is None  # no-break space: Go's unicode.IsPrint says no


async def test_the_header_deadline_also_covers_later_requests_on_a_connection() -> None:
    async with _serving(HttpServer(_handler, HttpLimits(read_header_timeout=0.2, idle_timeout=0))) as port:
        # The first request is answered; the half-sent second one is dropped without an answer.
        answer = await _exchange(port, b"GET /first HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\nHost:")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nok /first")


CLOSE = b"Connection: close\r\n"


def _body_size(req: Request) -> Response:
    if req.body_file is None:
        return Response.text(f"in memory {len(req.body)}")
    with req.body_file as spooled:
        return Response.text(f"spooled {len(spooled.read())}")


async def test_spooled_routes_take_bodies_of_any_size_in_a_file() -> None:
    chunk = b"x" * 4096
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    server = HttpServer(_body_size, HttpLimits(max_body_bytes=100), spooled={("PUT", "/big")})
    async with _serving(server) as port:
        sized = await _exchange(
            port, b"PUT /big HTTP/1.1\r\n%sContent-Length: 5000\r\n\r\n" % CLOSE + bytes(5000)
        )
        streamed = await _exchange(
            port, b"PUT /big HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n" % CLOSE + chunked
        )
        small = await _exchange(
            port, b"PUT /small HTTP/1.1\r\n%sContent-Length: 50\r\n\r\n" % CLOSE + bytes(50)
        )
        capped = await _exchange(port, b"PUT /small HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + bytes(5000))
        other_method = await _exchange(port, b"POST /big HTTP/1.1\r\nContent-Length: 5000\r\n\r\n")
    assert sized.endswith(b"\r\n\r\nspooled 5000")
    assert streamed.endswith(b"\r\n\r\nspooled 20480")
    assert small.endswith(b"\r\n\r\nin memory 50")
    assert capped.startswith(b"HTTP/1.1 413 ")
    assert other_method.startswith(b"HTTP/1.1 413 ")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _peer_names(req: Request) -> Response:
    return Response.text(",".join(sorted(req.peer_names)) or "-")


async def _names_seen(port: int, tls: ssl.SSLContext | None) -> list[bytes]:
    """The peer names two keep-alive requests on one connection were handed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    try:
        get = b"GET /%d HTTP/1.1\r\nHost: x\r\n%s\r\n"
        writer.write(get % (1, b"") + get % (2, b"Connection: close\r\n"))
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    return [part.split(b"\r\n\r\n", 1)[1][:40] for part in answer.split(b"HTTP/1.1 ")[1:]]


async def test_requests_carry_the_names_of_a_verified_client_certificate_only(certs: Certs) -> None:
    client = certs.client_context("client")
    verifying = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    verifying.load_cert_chain(*certs.pair("server"))
    verifying.load_verify_locations(certs.ca)
    verifying.verify_mode = ssl.CERT_REQUIRED
    server = HttpServer(_peer_names)
    async with _serving(server) as plain:
        verified = await server.listen("127.0.0.1", 0, tls=verifying)
        assert await _names_seen(verified, client) == [b"client.dc1.consul,localhost"] * 2
        assert await _names_seen(verified, certs.client_context("cli")) == [b"cli.dc1.consul,localhost"] * 2
        assert await _names_seen(plain, None) == [b"-"] * 2
        verifying.verify_mode = ssl.CERT_NONE  # as a reload that turns verify_incoming off
        assert await _names_seen(verified, client) == [b"-"] * 2


_TOO_MANY = b"HTTP/1.1 429 Too Many Requests\r\n"
_RELAYED = b"X-Waypost-Forwarded: client\r\n"


class _Cluster:
    """A relay rule whose members and marker the test decides: every connection comes from
    127.0.0.1, so whether that address is a member is the rule's answer."""

    def __init__(self, members: bool) -> None:
        self.members = members

    def member(self, address: str, names: frozenset[str]) -> bool:
        return self.members and address == "127.0.0.1"

    def relayed(self, headers: dict[str, str]) -> bool:
        return headers.get("x-waypost-forwarded") == "client"


async def _held(port: int, marker: bytes = b"") -> tuple[bytes, asyncio.StreamWriter]:
    """A keep-alive connection's first answer's status line, and the connection, left open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /x HTTP/1.1\r\nHost: x\r\n%s\r\n" % marker)
    line = await asyncio.wait_for(reader.readline(), 10)
    return line, writer


async def _hold_all(
    port: int, count: int, marker: bytes = b""
) -> tuple[list[bytes], list[asyncio.StreamWriter]]:
    held = [await _held(port, marker) for _ in range(count)]
    return [line for line, _ in held], [writer for _, writer in held]


async def test_relays_of_members_are_not_counted_but_plain_callers_are() -> None:
    server = HttpServer(_handler, HttpLimits(max_conns_per_client=3), relays=_Cluster(members=True))
    async with _serving(server) as port:
        relays, relay_conns = await _hold_all(port, 8, _RELAYED)
        plain, plain_conns = await _hold_all(port, 4)
        try:
            assert all(line.startswith(b"HTTP/1.1 200") for line in relays)
            assert [line.startswith(b"HTTP/1.1 200") for line in plain] == [True, True, True, False]
            assert plain[3] == _TOO_MANY
            line, writer = await _held(port, _RELAYED)  # a relay past the cap
            relay_conns.append(writer)
            assert line.startswith(b"HTTP/1.1 200")
        finally:
            for writer in relay_conns + plain_conns:
                writer.close()


async def test_the_marker_alone_does_not_pass_the_cap() -> None:
    server = HttpServer(_handler, HttpLimits(max_conns_per_client=3), relays=_Cluster(members=False))
    async with _serving(server) as port:
        marked, conns = await _hold_all(port, 4, _RELAYED)
        try:
            assert [line.startswith(b"HTTP/1.1 200") for line in marked] == [True, True, True, False]
            assert (await _exchange(port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(_TOO_MANY)
        finally:
            for writer in conns:
                writer.close()


class _Pending:
    """A handler whose ``/wait`` answers are futures the test settles, as parked blocking
    queries are: the connection writes them from their done callback, with no task."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[Response]] = []

    def __call__(self, req: Request) -> Response | Awaitable[Response]:
        if req.path != "/wait":
            return Response.text(f"ok {req.path}")
        answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.waiting.append(answer)
        return answer

    async def parked(self, count: int) -> None:
        for _ in range(200):
            if len(self.waiting) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(self.waiting)} of {count} requests parked")


async def test_requests_pipelined_behind_a_pending_answer_wait_their_turn() -> None:
    pending = _Pending()
    async with _serving(HttpServer(pending)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /wait HTTP/1.1\r\n\r\nGET /wait HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n")
            await pending.parked(1)
            pending.waiting[0].set_result(Response.text("first"))
            first = await asyncio.wait_for(reader.readuntil(b"first"), 10)
            await pending.parked(2)  # the second ran only once the first was answered
            pending.waiting[1].set_result(Response.text("second"))
            rest = await asyncio.wait_for(reader.readuntil(b"ok /after"), 10)
            # The connection is idle again: the next pending answer is written as well.
            writer.write(b"GET /wait HTTP/1.1\r\nConnection: close\r\n\r\n")
            await pending.parked(3)
            pending.waiting[2].set_result(Response.text("third"))
            last = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest.index(b"second") < rest.index(b"ok /after")
    assert last.endswith(b"\r\n\r\nthird")


async def test_a_client_that_leaves_cancels_its_pending_answers() -> None:
    pending = _Pending()
    async with _serving(HttpServer(pending)) as port:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /wait HTTP/1.1\r\n\r\n")
        await pending.parked(1)
        writer.close()
        for _ in range(200):
            if pending.waiting[0].cancelled():
                break
            await asyncio.sleep(0.01)
        assert pending.waiting[0].cancelled()
        # The server goes on serving others.
        assert (await _exchange(port, b"GET /x HTTP/1.1\r\n%s\r\n" % CLOSE)).endswith(b"ok /x")


async def test_new_limits_hold_for_open_connections() -> None:
    """A reload replaces the server's limits; connections read the caps from the server."""
    server = HttpServer(_body_size, HttpLimits(max_body_bytes=100))
    async with _serving(server) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            put = b"PUT /x HTTP/1.1\r\nContent-Length: 500\r\n%s\r\n" + bytes(500)
            writer.write(put % b"")
            refused = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /x HTTP/1.1\r\n\r\n")
            await asyncio.wait_for(reader.readuntil(b"in memory 0"), 10)
            server.limits = HttpLimits(max_body_bytes=1000)
            writer.write(put % CLOSE)
            taken = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
    assert refused.startswith(b"HTTP/1.1 413 ")
    assert taken.endswith(b"\r\n\r\nin memory 500")
