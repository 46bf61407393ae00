"""``?dc=<other>``: the request goes, as it came, to a server of that datacenter, and its
answer comes back as the remote server gave it (status, body, Consul's headers), the way
Consul's ``forwardDC`` relays an RPC. A blocking query blocks over there: ``index`` and
``wait`` travel in the query string and the remote ``X-Consul-Index`` comes back.

Forwarded requests carry ``FORWARDED_HEADER`` naming who forwarded them, so a request
crosses at most two hops: a client agent hands it to a server of its own datacenter,
which forwards it on, and no server forwards what a server sent."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from urllib.parse import quote

from waypost.api.blocking import DEFAULT_WAIT, MAX_WAIT
from waypost.api.common import NO_DC_PATH
from waypost.api.http import Request, Response
from waypost.durations import parse_duration
from waypost.http_client import ConnectError, HttpClient
from waypost.http_client import Response as HttpResponse

__all__ = ["CLIENT_HOP", "FORWARDED_HEADER", "SERVER_HOP", "Forwarder"]

log = logging.getLogger("waypost.wan")

FORWARDED_HEADER = "X-Waypost-Forwarded"
CLIENT_HOP, SERVER_HOP = "client", "server"

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "expect", "host", "content-length",
     "proxy-connection", "trailer", "date", "content-type", "content-encoding", FORWARDED_HEADER.lower()}
)  # fmt: skip
"""Headers that belong to one connection, or that the server sets itself, never relayed."""

_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_SLACK = 10.0
"""Seconds a forwarded blocking query may take past its wait (jitter, a slow hop)."""
_PLAIN_TIMEOUT = 60.0
_CONNECT_TIMEOUT = 5.0
_STREAMED = "text/event-stream"
"""Answers relayed chunk by chunk as they come (``/v1/stream``), never read whole."""
_STREAM_SILENCE = 60.0
"""Seconds a relayed stream may stay silent: four of the streams' keep-alive pings."""


def forward_timeout(req: Request) -> float:
    """A blocking query may take its whole wait (plus Consul's wait/16 jitter) remotely."""
    if not req.arg("index"):
        return _PLAIN_TIMEOUT
    try:
        wait = parse_duration(req.arg("wait") or "") if req.arg("wait") else DEFAULT_WAIT
    except ValueError:
        wait = DEFAULT_WAIT  # the remote server refuses it, with Consul's message
    wait = MAX_WAIT if wait <= 0 else min(wait, MAX_WAIT)
    return wait + wait / 16 + _SLACK


def target_url(base: str, req: Request) -> str:
    path = quote(req.path, safe=_PATH_SAFE)
    query = f"?{req.raw_query}" if req.raw_query else ""
    return f"{base}{path}{query}"


def _timeouts(req: Request) -> tuple[float | None, float | None]:
    """(total, silence): a delta stream lasts as long as its reader, while the server keeps
    talking."""
    if req.path.startswith("/v1/stream/"):
        return None, _STREAM_SILENCE
    return forward_timeout(req), None


class Forwarder:
    """Relays requests over one pool of keep-alive connections (HTTPS with ``tls``).

    The pool has no cap of its own: a relayed blocking query holds its connection until
    the server answers, up to minutes, so a cap would queue callers behind parked queries
    and fail them as unreachable servers. What bounds it is upstream: a caller's connection
    relays one request at a time (pipelined ones wait their turn), callers are capped per
    address by ``limits.http_max_conns_per_client``, and all of it by the open-files limit
    (``waypost agent`` lifts its soft limit to the hard one, as Go does for Consul). The
    servers do not count these connections per client (``agent.relays``)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.http = HttpClient(tls=tls, connect_timeout=_CONNECT_TIMEOUT)

    async def close(self) -> None:
        await self.http.close()

    async def relay(
        self,
        bases: Sequence[str],
        req: Request,
        hop: str,
        server_name: str | None = None,
        unreachable: str = NO_DC_PATH,
    ) -> Response:
        """The first answer from ``bases`` (base URLs, nearest first); a server that cannot
        be reached (or, with ``server_name``, whose certificate does not carry that name)
        passes the request to the next. None reachable: ``unreachable`` (another
        datacenter's: "No path to datacenter")."""
        headers = [(k, v) for k, v in req.headers.items() if k not in _HOP_BY_HOP]
        if "content-type" in req.headers:
            headers.append(("Content-Type", req.headers["content-type"]))
        headers.append((FORWARDED_HEADER, hop))
        total, silence = _timeouts(req)
        for base in bases:
            try:
                if req.body_file is not None:
                    req.body_file.seek(0)  # a spooled body (a snapshot), sent whole to each try
                resp = await self.http.request(
                    req.method,
                    target_url(base, req),
                    body=req.body_file if req.body_file is not None else req.body or None,
                    headers=headers,
                    total=total,
                    read_timeout=silence,
                    server_hostname=server_name,
                )
                kept = [(k, v) for k, v in resp.headers if k.lower() not in _HOP_BY_HOP]
                content_type = resp.header("Content-Type") or "application/json"
                if content_type.startswith(_STREAMED):
                    return Response(b"", resp.status, content_type, kept, stream=_chunks(resp))
                return Response(await resp.read(), resp.status, content_type, kept)
            except OSError as exc:
                if req.method != "GET" and not isinstance(exc, ConnectError):
                    # Sent, but no answer: the write may have applied, and resending it
                    # elsewhere could apply it twice. Only reading it back can tell.
                    return Response.text(f"rpc error: no answer from {base} to a write: {exc}", 500)
                log.debug("forwarding to %s failed: %s", base, exc)
        return Response.text(unreachable, 500)


async def _chunks(resp: HttpResponse) -> AsyncIterator[bytes]:
    """A relayed stream's body as it arrives; it ends when the server's does, and the
    caller leaving closes the connection to the server."""
    try:
        async for chunk in resp.chunks():
            yield chunk
    except OSError as exc:
        log.debug("relayed stream ended: %s", exc)
    finally:
        resp.close()
