"""The UDP data plane, for DNS-like services: one upstream session per client address.

The first datagram from a client address picks an instance and opens a connected socket
to it; replies come back through the listening socket to that client. A session ends
after ``idle_timeout`` without traffic (30s when unset), when its instance leaves the set
(after ``drain_timeout``), or at an ICMP error, which counts as a failed connect for
outlier detection; if the instance never answered, the session's datagrams go to another
instance, as a refused TCP connect tries another. Sessions and the
datagrams held while a session opens are bounded, so a flood of sources cannot grow memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import cast

from waypost.proxy.balance import Key
from waypost.proxy.pool import Pool
from waypost.proxy.upstreams import Upstream

__all__ = ["UdpListener"]

log = logging.getLogger("waypost.proxy")

Address = tuple[str, int]
DEFAULT_IDLE = 30.0
MAX_SESSIONS = 4096
MAX_PENDING = 64


class _Session(asyncio.DatagramProtocol):
    def __init__(self, listener: UdpListener, client: Address, upstream: Upstream) -> None:
        self.listener = listener
        self.client = client
        self.upstream = upstream
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.unanswered: list[bytes] = []
        self.tried: frozenset[Key] = frozenset()
        self.answered = False
        self.opening: asyncio.Task[None] | None = None
        self.closed = False
        self._idle: asyncio.TimerHandle | None = None
        self._drain: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Neither uvloop's nor CPython's selector datagram transport subclasses DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        for data in self.pending:
            self.transport.sendto(data)
        self.pending.clear()
        self.touch()

    def send(self, data: bytes) -> None:
        if not self.answered and len(self.unanswered) < MAX_PENDING:
            self.unanswered.append(data)
        if self.transport is not None:
            self.transport.sendto(data)
            self.touch()
        elif len(self.pending) < MAX_PENDING:
            self.pending.append(data)

    def touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        idle = self.listener.pool.listener.idle_timeout or DEFAULT_IDLE
        self._idle = asyncio.get_running_loop().call_later(idle, self.close)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.answered = True
        self.unanswered.clear()
        self.listener.reply(data, self.client)
        self.listener.pool.succeeded(self.upstream)
        self.touch()

    def error_received(self, exc: Exception) -> None:
        self.listener.failed(self)

    def drain(self, timeout: float) -> None:
        if self._drain is None and not self.closed:
            self._drain = asyncio.get_running_loop().call_later(timeout, self.close)

    def undrain(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for handle in (self._idle, self._drain):
            if handle is not None:
                handle.cancel()
        self.listener.forget(self)
        if self.transport is not None:
            self.transport.close()


class _Front(asyncio.DatagramProtocol):
    def __init__(self, listener: UdpListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.listener.received(data, addr)


class UdpListener:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.sessions: OrderedDict[Address, _Session] = OrderedDict()
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        """Bind; OSError (a port in use) is the caller's to report with the listener's name."""
        config = self.pool.listener
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Front(self), local_addr=(config.host, config.port)
        )
        self._transport = transport

    @property
    def port(self) -> int:
        assert self._transport is not None
        port: int = self._transport.get_extra_info("sockname")[1]
        return port

    def received(self, data: bytes, client: Address) -> None:
        session = self.sessions.get(client)
        if session is None or session.closed:
            upstream = self.pool.choose()
            if upstream is None:
                log.debug("%s: no passing instances; datagram dropped", self.pool.listener.name)
                return
            session = self._open(client, upstream)
        else:
            self.sessions.move_to_end(client)
        session.send(data)

    def _open(self, client: Address, upstream: Upstream) -> _Session:
        while len(self.sessions) >= MAX_SESSIONS:
            self.sessions.popitem(last=False)[1].close()
        session = _Session(self, client, upstream)
        self.sessions[client] = session
        self.pool.attach(upstream, session)
        session.opening = asyncio.get_running_loop().create_task(self._connect(session))
        return session

    async def _connect(self, session: _Session) -> None:
        up = session.upstream
        try:
            await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: session, remote_addr=(up.address, up.port)
            )
        except OSError as exc:
            log.warning("%s: cannot reach %s: %s", self.pool.listener.name, up.target, exc)
            self.failed(session)

    def failed(self, session: _Session) -> None:
        """An ICMP error or no route: count it, and before any answer came, send what the
        client sent so far to another instance (a refused connect, in datagrams)."""
        if session.closed:
            return
        self.pool.failed(session.upstream)
        session.close()
        if session.answered:
            return
        tried = session.tried | {session.upstream.key}
        upstream = self.pool.choose(tried) if len(tried) < self.pool.attempts else None
        if upstream is None:
            log.warning(
                "%s: every instance tried (%d) refused the datagrams", self.pool.listener.name, len(tried)
            )
            return
        retry = self._open(session.client, upstream)
        retry.tried = tried
        for data in session.unanswered:
            retry.send(data)

    def reply(self, data: bytes, client: Address) -> None:
        if self._transport is not None:
            self._transport.sendto(data, client)

    def forget(self, session: _Session) -> None:
        if self.sessions.get(session.client) is session:
            del self.sessions[session.client]
        self.pool.detach(session.upstream, session)

    async def close(self, drain: float = 0.0) -> None:
        """Sessions end with the listening socket, which carries their replies; ``drain`` is
        accepted for symmetry with TCP."""
        for session in list(self.sessions.values()):
            session.close()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
