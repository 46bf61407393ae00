"""The TCP data plane: accept, connect to an upstream chosen by the pool, relay both ways.

Built on asyncio protocols (uvloop's transports when the proxy runs on uvloop) rather than
streams: bytes go from one transport's ``data_received`` straight into the other's write
buffer, and transport flow control gives back-pressure, so neither side ever holds more
than the transports' high-water marks. uvloop has no splice, so this is the zero-copy it
allows: no extra buffering or copying in Python.

A refused or timed-out connect counts against the instance (outlier detection) and the
connection tries another instance, so losing an instance costs only connections that
were already open to it. Reading from the client waits until the upstream is connected.

With ``Tls`` hooks (Connect's sidecars) the listener terminates TLS with ``Tls.server``,
asks ``Tls.admit`` about each client before connecting anywhere, and opens upstream
connections with ``Tls.client``, checking each upstream's certificate with
``Tls.verify_upstream``; a refused client or upstream is cut at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from waypost.proxy.pool import Pool
from waypost.proxy.upstreams import Upstream

__all__ = ["TcpListener", "Tls"]

log = logging.getLogger("waypost.proxy")


@dataclass(frozen=True, slots=True)
class Tls:
    server: ssl.SSLContext | None = None
    admit: Callable[[asyncio.Transport], Awaitable[bool]] | None = None
    """Whether the (TLS) client may go on; called once per connection, after the handshake."""
    client: Callable[[], ssl.SSLContext] | None = None
    """The context for upstream connections, asked for each one (certificates rotate)."""
    verify_upstream: Callable[[asyncio.Transport], bool] | None = None


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; ``peer`` is the other one once connected."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.eof = False
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
            return
        # Not linked yet (uvloop reads right after connection_made, and a server may speak
        # first): hold this one chunk and read no more until the other side is connected.
        self.early.append(data)
        assert self.transport is not None
        self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        # TLS has no half-close in asyncio: an SSL transport closes whatever this returns.
        keep = self.transport is not None and self.transport.get_extra_info("ssl_object") is None
        if peer is None:
            return keep  # passed on by ``link`` once the other side is connected
        if peer.transport is None or peer.eof or not peer.transport.can_write_eof():
            self.conn.close()
            return False
        peer.transport.write_eof()
        return keep

    def link(self, peer: _Side) -> None:
        """Relay to ``peer`` from now on, starting with whatever arrived before it was there."""
        self.peer = peer
        assert self.transport is not None
        assert peer.transport is not None
        for data in self.early:
            peer.transport.write(data)
        self.early.clear()
        if self.eof:
            self.eof_received()
        else:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.close()


class _Connection:
    """A client connection and, once one accepted, its upstream connection."""

    def __init__(self, listener: TcpListener) -> None:
        self.listener = listener
        self.client: _Side = _ClientSide(self)
        self.upstream: _Side | None = None
        self.target: Upstream | None = None
        self.closed = False
        self._connecting: asyncio.Task[None] | None = None
        self._drain: asyncio.TimerHandle | None = None

    def made(self) -> None:
        assert self.client.transport is not None
        self.client.transport.pause_reading()
        self.listener.connections.add(self)
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        pool = self.listener.pool
        loop = asyncio.get_running_loop()
        tls = self.listener.tls
        if tls.admit is not None:
            assert self.client.transport is not None
            if not await tls.admit(self.client.transport):
                self.close(abort=True)
                return
        tried: set[tuple[str, str]] = set()
        for _ in range(pool.attempts):
            up = pool.choose(tried)
            if up is None:
                break
            tried.add(up.key)
            side = _Side(self)
            try:
                async with asyncio.timeout(pool.listener.connect_timeout):
                    context = tls.client() if tls.client is not None else None
                    await loop.create_connection(lambda: side, up.address, up.port, ssl=context)  # noqa: B023
            except (OSError, TimeoutError) as exc:
                pool.failed(up)
                log.debug("%s: connect to %s failed: %s", pool.listener.name, up.target, exc)
                continue
            if tls.verify_upstream is not None and not tls.verify_upstream(
                cast(asyncio.Transport, side.transport)
            ):
                assert side.transport is not None
                side.transport.abort()
                pool.failed(up)
                continue
            if self.closed:
                assert side.transport is not None
                side.transport.close()
                return
            pool.succeeded(up)
            self.upstream, self.target = side, up
            pool.attach(up, self)
            side.link(self.client)
            self.client.link(side)
            return
        if not tried:
            # The watcher logged the empty set once; a line per refused connection would flood.
            log.debug("%s: no passing instances; connection refused", pool.listener.name)
        else:
            log.warning(
                "%s: every instance tried (%d) refused the connection", pool.listener.name, len(tried)
            )
        self.close(abort=True)

    def drain(self, timeout: float) -> None:
        if self._drain is None and not self.closed:
            self._drain = asyncio.get_running_loop().call_later(timeout, self.close, True)

    def undrain(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None

    def close(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.listener.connections.discard(self)
        if self._drain is not None:
            self._drain.cancel()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self.target is not None:
            self.listener.pool.detach(self.target, self)
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None:
                if abort:
                    side.transport.abort()
                else:
                    side.transport.close()


class _ClientSide(_Side):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.conn.made()


class TcpListener:
    def __init__(self, pool: Pool, tls: Tls | None = None) -> None:
        self.pool = pool
        self.tls = tls or Tls()
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    def _accept(self) -> _Side:
        return _Connection(self).client

    async def start(self) -> None:
        """Bind; OSError (a port in use) is the caller's to report with the listener's name."""
        config = self.pool.listener
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._accept, config.host, config.port, backlog=1024, ssl=self.tls.server
        )

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self, drain: float = 0.0) -> None:
        """Stop accepting; open connections are cut now, or after ``drain`` seconds."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections):
            if drain > 0:
                conn.drain(drain)
            else:
                conn.close(abort=True)
