"""The agent's own HTTP client: keep-alive HTTP/1.1 on asyncio streams, parsed by httptools.

Hand-written rather than aiohttp because aiohttp was the largest single cost of a client
agent: 8.7 MiB of its RSS (aiohttp with yarl, multidict, attrs and the ``email`` and
``http.cookies`` modules they load), measured in a process holding everything else a
client agent imports, out of 51 MiB in all. What the agent asks of HTTP is small: calls
to a server's store API (``store.remote``), requests relayed to servers, streams included
(``wan.forward``), WAN exchanges (``wan.federation``) and HTTP checks (``checks.http``,
which follows redirects itself). httptools is already loaded for the agent's HTTP server,
so this client costs its own code only. Docker checks keep aiohttp (a unix socket, shared
with the registrator), loaded with the first such check.

Connections are pooled per scheme, host, port and TLS server name, kept for ``IDLE_TIMEOUT``
seconds (aiohttp's keep-alive timeout), and reused while the server keeps them open. A
request that fails on a reused connection before any answer arrived is sent once more on a
new one only when its method is idempotent, as aiohttp does: a POST may have been applied.
Every error is an ``OSError``: ``ConnectError`` when the request surely never left (the
connection or its TLS handshake failed), ``TimeoutError`` for a deadline, ``ProtocolError``
for a server that hung up or did not speak HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import IO
from urllib.parse import urlsplit

import httptools

__all__ = [
    "IDLE_TIMEOUT",
    "ConnectError",
    "ConnectTimeoutError",
    "HttpClient",
    "ProtocolError",
    "Response",
    "ServerDisconnectedError",
]

IDLE_TIMEOUT = 15.0
_READ_SIZE = 64 * 1024
_CLOSE_WAIT = 1.0
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
"""Methods that carry ``Content-Length: 0`` when they have no body, as Go's client sends."""


class ConnectError(OSError):
    """The connection or its TLS handshake failed: the request was never sent."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(f"Cannot connect to host {host}:{port} [{cause or type(cause).__name__}]")
        self.host = host
        self.port = port
        self.cause = cause

    @property
    def tls(self) -> bool:
        """Whether TLS refused it (the certificate, the handshake) rather than the network."""
        return isinstance(self.cause, ssl.SSLError)


class ConnectTimeoutError(ConnectError, TimeoutError):
    """No connection within the connect timeout: never sent either."""


class ProtocolError(OSError):
    """The server closed the connection before its answer was whole, or sent no HTTP."""


class ServerDisconnectedError(ProtocolError):
    """The server closed the connection before its answer was whole (Go's "EOF")."""

    def __init__(self) -> None:
        super().__init__("Server disconnected")


class _Connection:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def open(self) -> bool:
        """Still usable: the server has not closed it or sent anything unasked."""
        return not (self.writer.is_closing() or self.reader.at_eof() or self.reader.exception())

    def close(self) -> None:
        self.writer.close()


class _Message:
    """httptools' callbacks for one answer."""

    __slots__ = ("begun", "body", "done", "headers", "headers_done", "reason")

    def __init__(self) -> None:
        self.begun = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.headers_done = False
        self.body: list[bytes] = []
        self.done = False

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_status(self, reason: bytes) -> None:
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        self.done = True


class Response:
    """An answer whose status and headers have arrived; its body is read whole (``read``)
    or as it arrives (``chunks``). Once the body has been read to its end the connection
    goes back to the pool; ``close`` before that closes it."""

    def __init__(
        self,
        client: HttpClient,
        key: tuple[str, str, int, str | None],
        conn: _Connection,
        parser: httptools.HttpResponseParser,
        message: _Message,
        deadline: float | None,
        read_timeout: float | None,
        until_close: bool,
    ) -> None:
        self.status: int = parser.get_status_code()
        self.reason = message.reason
        self.headers = message.headers
        self._client = client
        self._key = key
        self._conn: _Connection | None = conn
        self._parser = parser
        self._message = message
        self._deadline = deadline
        self._read_timeout = read_timeout
        self._until_close = until_close
        """No length and not chunked: the body ends when the server closes."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case)."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    async def read(self) -> bytes:
        try:
            while not self._message.done:
                await self._feed()
        except BaseException:
            self.close()
            raise
        body = b"".join(self._message.body)
        self._message.body.clear()
        self._finish()
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, without waiting for the rest."""
        try:
            while True:
                if self._message.body:
                    pending = b"".join(self._message.body)
                    self._message.body.clear()
                    yield pending
                if self._message.done:
                    self._finish()
                    return
                await self._feed()
        finally:
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _feed(self) -> None:
        if self._conn is None:
            raise ProtocolError("the response was closed")
        async with asyncio.timeout_at(self._deadline):
            data = await _receive(self._conn, self._read_timeout)
        if not data:
            if self._until_close and self._message.headers_done:
                self._message.done = True
                self.close()
                return
            raise ServerDisconnectedError
        _parse(self._parser, data)

    def _finish(self) -> None:
        """Back to the pool if the server keeps it open and sent nothing past this answer."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._until_close or self._message.begun > 1 or not _keep_alive(self._parser, self.headers):
            conn.close()
        else:
            self._client.park(self._key, conn)


class HttpClient:
    """Pooled connections to any number of servers; ``tls`` for ``https`` URLs (without
    it, ``https`` is encrypted but unverified, as aiohttp's ``ssl=False``). Without
    ``keep_alive`` every request has a connection of its own, closed after its answer."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float | None = 10.0,
        idle_timeout: float = IDLE_TIMEOUT,
        keep_alive: bool = True,
    ) -> None:
        self._tls = tls
        self.keep_alive = keep_alive
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self._idle: dict[tuple[str, str, int, str | None], list[_Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | IO[bytes] | None = None,
        total: float | None = None,
        read_timeout: float | None = None,
        server_hostname: str | None = None,
    ) -> Response:
        """``url`` already percent-encoded. ``total`` bounds everything until the body has
        been read, ``read_timeout`` each wait for more of the answer (a stream's silence);
        ``server_hostname`` is the name the server's certificate must carry, if not the
        URL's host."""
        if self._closed:
            raise ProtocolError("the HTTP client is closed")
        parts = urlsplit(url)
        secure = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = (parts.scheme, host, port, server_hostname if secure else None)
        if not self.keep_alive:
            headers = [*headers, ("Connection", "close")]
        head = _head(method, target, parts.netloc, headers, body)
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        loop = asyncio.get_running_loop()
        deadline = None if total is None else loop.time() + total
        for attempt in (1, 2):
            conn, reused = self._pooled(key) if attempt == 1 else (None, False)  # then a new one
            if conn is None:
                conn = await self._connect(key, deadline)
            parser_message = _Message()
            parser = httptools.HttpResponseParser(parser_message)
            try:
                async with asyncio.timeout_at(deadline):
                    if body is not None and not isinstance(body, bytes):
                        body.seek(start)
                    await _send(conn, head, body)
                    while not parser_message.headers_done:
                        data = await _receive(conn, read_timeout)
                        if not data:
                            raise ServerDisconnectedError
                        _parse(parser, data)
            except (ProtocolError, ConnectionError):
                conn.close()
                if reused and attempt == 1 and method in _IDEMPOTENT and not parser_message.begun:
                    continue  # a kept connection the server had closed: nothing was answered
                raise
            except BaseException:
                conn.close()
                raise
            status = parser.get_status_code()
            no_body = method == "HEAD" or status in (204, 304)
            if no_body:
                parser_message.done = True
            until_close = not no_body and _until_close(parser_message.headers)
            response = Response(self, key, conn, parser, parser_message, deadline, read_timeout, until_close)
            if method == "HEAD":
                response.close()  # the parser would wait for the body a HEAD answer never has
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def park(self, key: tuple[str, str, int, str | None], conn: _Connection) -> None:
        """Keep ``conn`` for the next request to the same server."""
        if self._closed or not self.keep_alive or not conn.open():
            conn.close()
            return
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()
        self._idle.setdefault(key, []).append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.idle_timeout, self._sweep)

    async def close(self) -> None:
        """Close the kept connections, waiting (a second at most) until their sockets are."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        kept = [conn for conns in self._idle.values() for conn in conns]
        self._idle.clear()
        for conn in kept:
            conn.close()
        if kept:
            await asyncio.wait(
                [asyncio.ensure_future(c.writer.wait_closed()) for c in kept], timeout=_CLOSE_WAIT
            )

    def _pooled(self, key: tuple[str, str, int, str | None]) -> tuple[_Connection | None, bool]:
        conns = self._idle.get(key)
        while conns:
            conn = conns.pop()
            if conn.open():
                return conn, True
            conn.close()
        return None, False

    async def _connect(self, key: tuple[str, str, int, str | None], deadline: float | None) -> _Connection:
        scheme, host, port, server_hostname = key
        context = None
        if scheme == "https":
            context = self._tls if self._tls is not None else _unverified()
        limit = self.connect_timeout
        if deadline is not None:
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            limit = left if limit is None else min(limit, left)
        try:
            async with asyncio.timeout(limit):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=context,
                    server_hostname=server_hostname if context else None,
                    limit=_READ_SIZE,
                )
        except TimeoutError as exc:
            raise ConnectTimeoutError(host, port, exc) from None
        except OSError as exc:
            raise ConnectError(host, port, exc) from None
        return _Connection(reader, writer)

    def _sweep(self) -> None:
        """Close what stayed idle past ``idle_timeout``; look again while any is kept."""
        loop = asyncio.get_running_loop()
        self._sweeper = None
        cutoff = loop.time() - self.idle_timeout
        for key, conns in list(self._idle.items()):
            kept = [c for c in conns if c.idle_since > cutoff and c.open()]
            for conn in conns:
                if conn not in kept:
                    conn.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]
        if self._idle:
            self._sweeper = loop.call_later(self.idle_timeout, self._sweep)


def _head(
    method: str, target: str, netloc: str, headers: Iterable[tuple[str, str]], body: bytes | IO[bytes] | None
) -> bytes:
    """The request line and headers; a ``Host`` among ``headers`` replaces the URL's."""
    given = [f"{name}: {value}" for name, value in headers]
    if any(c in line for line in given for c in "\r\n"):
        raise ValueError("a header name or value holds a newline")
    lines = [f"{method} {target} HTTP/1.1"]
    if not any(line[:5].lower() == "host:" for line in given):
        lines.append(f"Host: {netloc.rpartition('@')[2]}")
    lines += given
    if isinstance(body, bytes):
        lines.append(f"Content-Length: {len(body)}")
    elif body is not None:
        position = body.tell()
        lines.append(f"Content-Length: {body.seek(0, 2) - position}")
        body.seek(position)
    elif method in _WITH_BODY:
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(conn: _Connection, head: bytes, body: bytes | IO[bytes] | None) -> None:
    if isinstance(body, bytes):
        conn.writer.write(head + body if len(body) < _READ_SIZE else head)
        if len(body) >= _READ_SIZE:
            conn.writer.write(body)
    else:
        conn.writer.write(head)
        while body is not None and (chunk := body.read(_READ_SIZE)):
            conn.writer.write(chunk)
            await conn.writer.drain()
    await conn.writer.drain()


async def _receive(conn: _Connection, read_timeout: float | None) -> bytes:
    async with asyncio.timeout(read_timeout):
        return await conn.reader.read(_READ_SIZE)


def _parse(parser: httptools.HttpResponseParser, data: bytes) -> None:
    try:
        parser.feed_data(data)
    except httptools.HttpParserError as exc:
        raise ProtocolError(f"not an HTTP answer: {exc}") from None


def _keep_alive(parser: httptools.HttpResponseParser, headers: list[tuple[str, str]]) -> bool:
    """What ``should_keep_alive`` said before the parser reset itself for a next answer."""
    tokens = {t.strip().lower() for k, v in headers if k.lower() == "connection" for t in v.split(",")}
    if parser.get_http_version() == "1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _until_close(headers: list[tuple[str, str]]) -> bool:
    names = {name.lower() for name, _ in headers}
    return "content-length" not in names and "transfer-encoding" not in names


@functools.cache
def _unverified() -> ssl.SSLContext:
    """One shared context for ``https`` without a configured one: encrypted, unverified."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
