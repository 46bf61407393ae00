"""A small HTTP/1.1 server on asyncio + httptools, with requests and responses as plain objects.

Hand-written because it is the measured hot path: on a 2-core machine a uvloop +
httptools protocol serves a prepared body about 4x faster than uvicorn and 6x faster
than aiohttp (see docs/http-server.md). Handlers stay sans-I/O: a handler takes a
``Request`` and returns a ``Response`` (or an awaitable of one, for blocking queries
and writes); this module only frames bytes. Pipelined requests are answered in order;
a client that disconnects cancels its pending handlers.

It also enforces what one client may cost (``HttpLimits``), as Go's net/http does for
Consul: a cap on header bytes, on body bytes, on connections per client address (the
cluster's own agents' relays aside, see ``Relays``), and
deadlines for half-sent headers and idle keep-alive connections. A few routes take bodies
of any size (a snapshot restore): theirs go to a temporary file, bounded by the disk. Deadlines are plain
numbers checked by one sweep per server, so the common request arms no timer. On a TLS
listener that verifies client certificates, requests carry the verified certificate's
DNS names (``Request.peer_names``), read once per connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from http import HTTPStatus
from typing import IO, Protocol, cast
from urllib.parse import unquote, unquote_plus

import httptools

__all__ = [
    "GO_MAX_HEADER_BYTES",
    "HttpLimits",
    "HttpServer",
    "Relays",
    "Request",
    "Response",
    "serve",
    "settled",
]

log = logging.getLogger("waypost.http")

GO_MAX_HEADER_BYTES = 1 << 20
"""Go's ``http.DefaultMaxHeaderBytes``, what Consul's server allows when not told otherwise."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one client may cost the server; a limit <= 0 is off.

    The defaults are the ones a Consul agent runs with: Go's ``DefaultMaxHeaderBytes``
    and Consul's ``limits.http_max_conns_per_client``. Consul sets no header or idle
    deadline, so a few stalled sockets can pin its connection slots forever; waypost
    closes them after ``read_header_timeout`` and ``idle_timeout``.
    """

    max_header_bytes: int = GO_MAX_HEADER_BYTES
    max_body_bytes: int = 8 << 20
    read_header_timeout: float = 30.0
    idle_timeout: float = 300.0
    max_conns_per_client: int = 200


Handler = Callable[["Request"], "Response | Awaitable[Response]"]


class Relays(Protocol):
    """Which connections are the cluster's own agents relaying their callers' requests, and
    so pass ``max_conns_per_client``: Consul's client agents multiplex RPCs over one
    connection, outside the HTTP limit, while a relay here parks one connection per
    blocking query. The server asks only about a connection that already sent a marked
    request, or that is past the cap (then before reading anything), so a caller that is no
    candidate is still refused on connect."""

    def member(self, address: str, names: frozenset[str]) -> bool:
        """Whether a connection from ``address``, whose verified certificate names ``names``
        (empty without one), may be an agent's."""
        ...

    def relayed(self, headers: dict[str, str]) -> bool:
        """Whether a request's headers (lower-case names) mark it as an agent's relay."""
        ...


_REASONS = {s.value: s.phrase for s in HTTPStatus}

_HEADER_SLOP = 4096
"""Go reads ``MaxHeaderBytes`` plus this much before it refuses a request head."""

_LINGER = 0.5
"""After refusing a request, how long the rest of it is read and dropped, so the client
reads the refusal instead of a reset (Go's ``rstAvoidanceDelay``)."""

_TOO_MANY_CONNS = b"Your IP is issuing too many concurrent connections, please rate limit your calls\n"
_TOO_MANY_RESPONSE = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(_TOO_MANY_CONNS), _TOO_MANY_CONNS)
)
"""Byte for byte what Consul's connection limiter writes before it closes the connection."""

_HEAD = -1.0
_IDLE = -2.0
"""``_Connection.deadline`` values meaning "a header (or idle) deadline starts now": the sweep
turns them into times, so the request path never reads the clock."""

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_NO_HEADERS: dict[str, str] = {}
_NO_BODY: list[bytes] = []
"""A connection's header dict and body list between requests (``_Connection._reset``)."""


class Request:
    """``body_file`` holds the body instead of ``body`` on the server's spooled routes: a
    temporary file, rewound, that the handler reads and closes."""

    __slots__ = (
        "body", "body_file", "hangup", "headers", "method", "param", "path", "query", "raw_query", "remote",
    )  # fmt: skip

    def __init__(self, method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.raw_query = raw_query
        self.query: dict[str, list[str]] = _parse_query(raw_query) if raw_query else {}
        self.headers = headers
        self.body = body
        self.body_file: IO[bytes] | None = None
        self.param = ""
        self.remote = ""
        self.hangup: Callable[[], None] = _stay
        """Drops the connection at once, unsent output included: how a streaming handler
        gives up on a client that stopped reading."""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def flag(self, name: str) -> bool:
        """Consul treats a present query parameter as set, whatever its value (``?recurse``)."""
        return name in self.query

    peer_names: frozenset[str] = frozenset()
    """The DNS names (lower case) of the client's certificate, when a TLS listener verified
    it; a class default here, so requests on other connections carry nothing extra."""


class _VerifiedRequest(Request):
    """A request on a connection whose client presented a certificate the listener verified."""

    __slots__ = ("peer_names",)

    def __init__(
        self,
        names: frozenset[str],
        method: str,
        path: str,
        raw_query: str,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        super().__init__(method, path, raw_query, headers, body)
        self.peer_names = names


def _verified_names(transport: asyncio.BaseTransport) -> frozenset[str]:
    """The DNS SANs of the peer's certificate, read once per connection. Python's ssl hands
    out the decoded certificate only once it was verified against the CA (an empty dict
    otherwise), so a listener that does not verify client certificates yields none."""
    cert = transport.get_extra_info("peercert")
    if not cert:
        return _NO_NAMES
    return frozenset(value.lower() for kind, value in cert.get("subjectAltName", ()) if kind == "DNS")


_NO_NAMES: frozenset[str] = frozenset()
"""What a connection without a verified certificate holds: an empty frozenset is a new
216-byte object each time, and every parked query keeps its connection."""


def _stay() -> None:
    """A request not read from a connection has nothing to hang up."""


def _parse_query(raw: str) -> dict[str, list[str]]:
    """``parse_qs(raw, keep_blank_values=True)``, several times faster on the hot path: most
    parts need no unquoting, and a flag such as ``?recurse`` maps to ``[""]``."""
    out: dict[str, list[str]] = {}
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        found = out.get(name)
        if found is None:
            out[name] = [value]
        else:
            found.append(value)
    return out


class Response:
    """A whole body, or with ``stream`` a body sent in chunks as it is produced (monitor).
    A ``head`` response is the answer to HEAD: the same head, with the body's length but
    without the body."""

    __slots__ = ("_wire", "body", "content_type", "head", "headers", "status", "stream")

    def __init__(
        self,
        body: bytes = b"",
        status: int = 200,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
        stream: AsyncIterator[bytes] | None = None,
        head: bool = False,
    ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = headers if headers is not None else []
        self.stream = stream
        self.head = head
        self._wire: tuple[bool, bytes, bytes] | None = None

    @classmethod
    def text(cls, message: str, status: int = 200) -> Response:
        return cls(message.encode(), status, "text/plain; charset=utf-8")

    def for_head(self) -> Response:
        """This answer to a GET as the answer to a HEAD, as Go's net/http gives it: the same
        status and headers, a Content-Length when there is a body, and no body."""
        return Response(self.body, self.status, self.content_type, self.headers, head=True)

    def encode(self, keep_alive: bool, date: bytes) -> bytes:
        """The wire bytes in one piece, for short answers written once (refusals)."""
        return self.wire_head(keep_alive, date) + (b"" if self.head else self.body)

    def wire_head(self, keep_alive: bool, date: bytes) -> bytes:
        """Status line and headers, kept for reuse while the Date header stays the same.

        Only the head is kept, never head and body joined: one answer goes to every parked
        query of its read, and a joined copy per answer (and a new one each second, as the
        Date changes) doubled what a server holds for large answers."""
        wire = self._wire
        if wire is not None and wire[0] is keep_alive and wire[1] is date:
            return wire[2]
        head = [
            b"HTTP/1.1 %d %s\r\n" % (self.status, _REASONS.get(self.status, "Unknown").encode()),
            b"Content-Type: %s\r\nDate: %s\r\n" % (self.content_type.encode(), date),
            b"Transfer-Encoding: chunked\r\n"
            if self.stream
            else b"Content-Length: %d\r\n" % len(self.body)
            if self.body or not self.head
            else b"",
        ]
        head.extend(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in self.headers)
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        head.append(b"\r\n")
        encoded = b"".join(head)
        self._wire = (keep_alive, date, encoded)
        return encoded


async def settled(answer: Response | Awaitable[Response]) -> Response:
    """A handler's or a relay's answer, whether it came at once or comes later."""
    return answer if isinstance(answer, Response) else await answer


class _Clock:
    """The Date header, formatted once per second rather than per response."""

    def __init__(self) -> None:
        self._second = 0
        self._value = b""

    def date(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
        return self._value


_CLOCK = _Clock()


def _decode_path(raw: bytes) -> str | None:
    """The path as text, or None when it cannot be served: percent-escapes that are not
    UTF-8 (keys are text here), or a character Consul's printable-path filter refuses."""
    try:
        path = raw.decode("ascii")
        if "%" in path:
            path = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    return path if path.isprintable() else None


_Queued = tuple["Request | Awaitable[Response] | Response", bool]
"""A request waiting behind another, or its answer, with whether the connection stays open."""


class _Connection(asyncio.Protocol):
    __slots__ = (
        "_body", "_client", "_closing", "_head_bytes", "_headers", "_names", "_parser", "_paused", "_probe",
        "_queue", "_reading_head", "_remote", "_request", "_server", "_size", "_spool", "_transport", "_url",
        "_watch_keep_alive", "_watching", "_worker", "deadline",
    )  # fmt: skip

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._parser: httptools.HttpRequestParser | None = None
        """Made when bytes arrive, dropped between requests: an idle parser is about 900
        bytes, a third of what a parked query costs, and remaking one about a microsecond."""
        self._transport: asyncio.Transport | None = None
        self._queue: list[_Queued] | None = None
        """What waits behind the answer in progress (pipelined requests), in order; made at
        its first use, as most connections never pipeline and 10,000 parked long-polls each
        keep one connection. A list, not a deque: it almost always holds 0 or 1 items."""
        self._worker: asyncio.Task[None] | None = None
        self._watching: asyncio.Future[Response] | None = None
        """The one pending answer when nothing else is queued (a blocking query): it is
        written by its done callback, without a task or a queue entry."""
        self._watch_keep_alive = True
        self._paused: asyncio.Future[None] | None = None
        """Set while the transport's write buffer is over its high-water mark: a streamed
        body is then pulled no further until the client reads."""
        self._closing = False
        self._remote = ""
        self._client = ""
        self._probe = ""
        """The client's address until its first request shows whether it is a relay (``Relays``)."""
        self._names = _NO_NAMES
        self._request: Callable[[str, str, str, dict[str, str], bytes], Request] = Request
        """Makes this connection's requests: ``_VerifiedRequest`` once a client certificate was verified."""
        #: When the server's sweep closes this connection (loop time), ``_HEAD`` or ``_IDLE``
        #: until the sweep sets that time, or 0 while a request is being answered.
        self.deadline = _HEAD
        # Bytes received while a request head is incomplete. A chunk in which a new head
        # begins is not counted, so the cap may be passed by one read before it holds.
        self._reading_head = True
        self._head_bytes = 0
        self._spool: IO[bytes] | None = None
        self._reset()

    def _reset(self) -> None:
        """Between requests the header dict and body list are shared empty placeholders,
        never written to (each request gets its own at its first byte): a connection waiting
        on a parked query would otherwise hold 120 bytes of empty containers."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._url = b""
        self._headers: dict[str, str] = _NO_HEADERS
        self._body: list[bytes] = _NO_BODY
        self._size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._server.conns[self] = None
        names = self._names = _verified_names(transport)
        if names:
            self._request = functools.partial(_VerifiedRequest, names)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            address = sys.intern(peer[0])  # one string per client address, not per connection
            self._remote = f"{address}:{peer[1]}"
            relays = self._server.relays
            if self._server.admit(address):
                self._client = address
            elif relays is None or not relays.member(address, names):
                self._refuse(_TOO_MANY_RESPONSE)
                return
            self._probe = address if relays is not None else ""

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._transport = None
        self._server.conns.pop(self, None)
        if self._client:
            self._server.release(self._client)
            self._client = ""
        self._drop_pending()
        self._reset()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self._paused is None:
            self._paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        paused, self._paused = self._paused, None
        if paused is not None and not paused.done():
            paused.set_result(None)

    def hang_up(self) -> None:
        """Close at once, dropping unsent output (``Request.hangup``)."""
        if self._transport is not None:
            self._transport.abort()

    def _drop_pending(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        watching, self._watching = self._watching, None
        if watching is not None:
            watching.cancel()
        for item, _ in self._queue or ():
            if isinstance(item, asyncio.Future | asyncio.Task):
                item.cancel()
            elif asyncio.iscoroutine(item):
                item.close()
        if self._queue:
            self._queue.clear()

    def _busy(self) -> bool:
        """Whether an earlier request's answer is still to be written."""
        return bool(self._queue) or self._watching is not None

    def _queued(self) -> list[_Queued]:
        if self._queue is None:
            self._queue = []
        return self._queue

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._reading_head:
            self._head_bytes += len(data)
        parser = self._parser
        if parser is None:
            parser = self._parser = httptools.HttpRequestParser(self)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "upgrades are not supported")
        except httptools.HttpParserCallbackError:
            log.exception("HTTP request handling failed")
            self._fail(500, "internal error")
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed HTTP request: {exc}")
        if self._reading_head and 0 < self._server.max_head < self._head_bytes and not self._closing:
            self._fail(431, "431 Request Header Fields Too Large")
        elif not self._reading_head and not self._url:
            # Between requests (no head or URL of a next one begun): most connections of a
            # large cluster are idle keep-alives (agent-to-server, streams, parked queries).
            self._parser = None

    def _fail(self, status: int, message: str) -> None:
        self._refuse(Response.text(message, status).encode(False, _CLOCK.date()))

    def _refuse(self, answer: bytes) -> None:
        """Answer and close, first reading and dropping what the client still sends for a
        moment: closing with unread input resets the connection, and the client would lose
        the answer."""
        self._closing = True
        self.deadline = 0.0
        self._drop_pending()
        transport = self._transport
        if transport is None:
            return
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(_LINGER, transport.close)

    def expire(self) -> None:
        """A deadline passed: close without an answer, as Go does on a read timeout."""
        self.deadline = 0.0
        self.abort()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._reading_head = True
        self.deadline = _HEAD
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self.deadline = 0.0
        if self._probe and not self._prove():
            return
        if self._server.spooled and (head := self._spooled()) is not None:
            admit = self._server.admit_spooled
            refusal = admit(head) if admit is not None else None
            if refusal is not None:
                self._refuse(refusal.encode(False, _CLOCK.date()))
                return
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 (the request's handler closes it)
        if "content-length" in self._headers or "expect" in self._headers:
            self._before_body()

    def _prove(self) -> bool:
        """Settle, at a connection's first request, whether it counts towards its address's
        cap: a relay does not (it gives back the slot it took on connect), anything else
        does. One let in past the cap as a possible relay is counted now if a slot is free
        (relays that connected beside it may have given theirs back), else refused."""
        relays = self._server.relays
        assert relays is not None  # only probed with a relay rule
        address, self._probe = self._probe, ""
        if relays.relayed(self._headers) and relays.member(address, self._names):
            if self._client:
                self._server.release(self._client)
                self._client = ""
            return True
        if self._client:
            return True
        if self._server.admit(address):
            self._client = address
            return True
        self._refuse(_TOO_MANY_RESPONSE)
        return False

    def _spooled(self) -> Request | None:
        """The request's head (no body) when its route is one whose body goes to a file, uncapped."""
        assert self._parser is not None  # called by the parser
        method = self._parser.get_method().decode("ascii")
        if all(m != method for m, _ in self._server.spooled):
            return None
        try:
            parsed = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            return None  # refused once the request is complete
        path = _decode_path(parsed.path or b"/")
        if path is None or (method, path) not in self._server.spooled:
            return None
        query = parsed.query.decode("latin-1") if parsed.query else ""
        head = self._request(method, path, query, self._headers, b"")
        head.remote = self._remote
        return head

    def _before_body(self) -> None:
        """Refuse an announced body over the cap before it is sent; ask for one the client
        holds back until told to go on (``Expect: 100-continue``)."""
        length = self._headers.get("content-length", "")
        max_body = self._server.max_body
        if max_body and self._spool is None and length.isdigit() and int(length) > max_body:
            self._fail(413, f"Request body({length} bytes) too large, max size: {max_body} bytes")
        elif (
            self._headers.get("expect", "").lower() == "100-continue"
            and not self._busy()
            and self._transport is not None
        ):
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self._closing:
            return
        if self._spool is not None:
            try:
                self._spool.write(body)
            except OSError as exc:
                self._reset()
                self._fail(500, f"failed to store the request body: {exc}")
            return
        self._body.append(body)
        self._size += len(body)
        max_body = self._server.max_body
        if 0 < max_body < self._size:
            self._fail(413, f"Request body too large, max size: {max_body} bytes")

    def on_message_complete(self) -> None:
        if self._closing:
            return
        parser = self._parser
        assert parser is not None  # called by the parser
        keep_alive = parser.should_keep_alive()
        try:
            parsed = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            self._fail(400, f"malformed HTTP request: invalid URL {self._url.decode('latin-1')!r}")
            return
        path = _decode_path(parsed.path or b"/")
        if path is None:
            self._reset()
            self._answer(Response.text("Bad request: the URL path is not printable UTF-8", 400), keep_alive)
            return
        raw_query = parsed.query.decode("latin-1") if parsed.query else ""
        method = parser.get_method().decode("ascii")
        req = self._request(method, path, raw_query, self._headers, b"".join(self._body))
        req.remote = self._remote
        req.hangup = self.hang_up
        if self._spool is not None:
            self._spool.seek(0)
            req.body_file, self._spool = self._spool, None
        self._reset()
        if self._busy():
            # Pipelined behind a request still in progress: run it only after that one,
            # so a GET pipelined after a PUT sees the PUT.
            self._queued().append((req, keep_alive))
        else:
            self._enqueue(self._run(req), keep_alive)

    def _answer(self, resp: Response, keep_alive: bool) -> None:
        if self._busy():
            self._queued().append((resp, keep_alive))
        else:
            self._enqueue(resp, keep_alive)

    def _run(self, req: Request) -> Response | Awaitable[Response]:
        try:
            result = self._server.handler(req)
        except Exception:
            log.exception("handler failed for %s %s", req.method, req.path)
            result = Response.text("internal error", 500)
        if req.method != "HEAD":
            return result
        return result.for_head() if isinstance(result, Response) else _for_head(result)

    def _enqueue(self, result: Response | Awaitable[Response], keep_alive: bool) -> None:
        """The answer to a request with none in progress before it (``_busy`` is false)."""
        if isinstance(result, Response) and result.stream is None:
            self._write(result, keep_alive)
            return
        if isinstance(result, Response):
            self._queued().append((result, keep_alive))
            self._worker = asyncio.ensure_future(self._drain())
            return
        # The common case, one pending answer (a blocking query): a callback writes it,
        # sparing a task per parked request.
        self._watching = asyncio.ensure_future(result)
        self._watch_keep_alive = keep_alive
        self._watching.add_done_callback(self, context=_CONTEXT)

    def __call__(self, fut: asyncio.Future[Response]) -> None:
        """The done callback of a pending answer alone in the queue: the connection itself,
        as a bound method would be one more object (64 bytes) per parked query."""
        if fut is not self._watching:
            return  # dropped with its connection
        self._watching = None
        keep_alive = self._watch_keep_alive
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.error("handler failed", exc_info=exc)
        resp = fut.result() if exc is None else Response.text("internal error", 500)
        if resp.stream is not None:
            self._queued().insert(0, (resp, keep_alive))
        else:
            self._write(resp, keep_alive)
        if self._queue and self._worker is None:
            self._worker = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        queue = self._queued()
        try:
            while queue:
                item, keep_alive = queue[0]
                if isinstance(item, Request):
                    item = self._run(item)
                try:
                    resp = item if isinstance(item, Response) else await item
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("handler failed")
                    resp = Response.text("internal error", 500)
                if resp.stream is not None:
                    try:
                        await self._send_stream(resp, keep_alive)
                    except Exception:
                        # The head is gone already: all that is left to say is to hang up.
                        log.exception("response stream failed")
                        self.abort()
                        return
                queue.pop(0)
                self._write(resp, keep_alive)
        finally:
            self._worker = None

    async def _send_stream(self, resp: Response, keep_alive: bool) -> None:
        """Head, then one chunk per item, then the last chunk (written by ``_write``); the
        next item is asked for only while the client keeps up with reading."""
        assert resp.stream is not None
        if self._transport is None:
            return
        self._transport.write(resp.encode(keep_alive, _CLOCK.date()))
        async for chunk in resp.stream:
            if self._transport is None:
                return
            if chunk:
                self._transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if self._paused is not None:
                await self._paused

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _write(self, resp: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        if resp.stream is not None:
            transport.write(b"0\r\n\r\n")
        elif resp.head or not resp.body:
            transport.write(resp.wire_head(keep_alive, _CLOCK.date()))
        else:
            # Head and the shared body as they are (one writev), not a joined copy per write.
            transport.writelines((resp.wire_head(keep_alive, _CLOCK.date()), resp.body))
        if not keep_alive:
            self._closing = True
            transport.close()
        elif not self._queue and not self._reading_head:
            self.deadline = _IDLE


_CONTEXT = contextvars.copy_context()
"""The context connections' done callbacks run in: they need none of their own, and one
shared context saves a copy per pending answer."""


async def _for_head(pending: Awaitable[Response]) -> Response:
    """A pending answer to a HEAD; a failure becomes the 500 it would be for a GET."""
    try:
        resp = await pending
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("handler failed")
        resp = Response.text("internal error", 500)
    return resp.for_head()


class HttpServer:
    """Listeners, and what all their connections share: the handler, the limits, the
    count of connections per client address and the sweep that enforces deadlines."""

    def __init__(
        self,
        handler: Handler,
        limits: HttpLimits | None = None,
        spooled: Collection[tuple[str, str]] = (),
        admit: Callable[[Request], Response | None] | None = None,
        relays: Relays | None = None,
    ) -> None:
        """``spooled`` are the (method, path) of requests whose body goes to a temporary file
        (``Request.body_file``) and is not capped by ``limits.max_body_bytes``. ``admit`` sees
        such a request's head before any of its body is taken and may refuse it (a token
        without the right to restore must not be able to fill the disk first). Connections
        ``relays`` recognises are not counted towards ``limits.max_conns_per_client``."""
        self.handler = handler
        self.max_head = 0
        self.max_body = 0
        self.limits = limits or HttpLimits()
        self.spooled = frozenset(spooled)
        self.admit_spooled = admit
        self.relays = relays
        self.conns: dict[_Connection, None] = {}
        """A dict as a set: an entry is half the size of a set's (a set keeps a sparser table)."""
        self._per_client: dict[str, int] = {}
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def limits(self) -> HttpLimits:
        return self._limits

    @limits.setter
    def limits(self, limits: HttpLimits) -> None:
        """Also the caps connections check, worked out once here (a reload replaces them)
        rather than kept on every connection."""
        self._limits = limits
        self.max_head = limits.max_header_bytes + _HEADER_SLOP if limits.max_header_bytes > 0 else 0
        self.max_body = max(limits.max_body_bytes, 0)

    async def listen(
        self, host: str, port: int, *, tls: ssl.SSLContext | None = None, handshake_timeout: float = 5.0
    ) -> int:
        """Bind and start serving, over TLS with ``tls``; returns the bound port (useful with
        port 0). Connections reach the handler only once their handshake is done."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(self),
            host,
            port,
            backlog=2048,
            ssl=tls,
            ssl_handshake_timeout=handshake_timeout if tls is not None else None,
        )
        self._servers.append(server)
        timeouts = [t for t in (self.limits.read_header_timeout, self.limits.idle_timeout) if t > 0]
        if timeouts and self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(min(1.0, max(0.05, min(timeouts) / 4))))
        return int(server.sockets[0].getsockname()[1])

    def admit(self, client: str) -> bool:
        """Count a new connection from ``client``, unless it already holds its share."""
        count = self._per_client.get(client, 0)
        if 0 < self.limits.max_conns_per_client <= count:
            return False
        self._per_client[client] = count + 1
        return True

    def release(self, client: str) -> None:
        count = self._per_client[client] - 1
        if count:
            self._per_client[client] = count
        else:
            del self._per_client[client]

    async def _sweep(self, tick: float) -> None:
        """Start the deadlines connections armed since the last pass and close those whose
        deadline passed. One pass per tick over all connections costs less than a timer or
        a clock read per request, and a deadline a tick late is still a deadline."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            head, idle = max(self.limits.read_header_timeout, 0.0), max(self.limits.idle_timeout, 0.0)
            for conn in list(self.conns):
                deadline = conn.deadline
                if deadline > 0.0:
                    if deadline <= now:
                        conn.expire()
                elif deadline == _HEAD:
                    conn.deadline = now + head if head else 0.0
                elif deadline == _IDLE:
                    conn.deadline = now + idle if idle else 0.0

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for server in self._servers:
            server.close()
        for conn in list(self.conns):
            conn.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


async def serve(handler: Handler, host: str, port: int, limits: HttpLimits | None = None) -> HttpServer:
    server = HttpServer(handler, limits)
    await server.listen(host, port)
    return server
