"""UDP and TCP listeners around a :class:`~waypost.dns.resolver.Resolver`.

The adapters only move bytes: a datagram or a length-prefixed TCP frame goes to
``Resolver.handle`` and whatever comes back goes out. The resolver may be made on the
first query rather than at start-up: it loads dnspython (3 MiB of a client agent's RSS,
with the ``importlib.metadata`` and ``email`` modules dnspython imports), which an agent
nobody asks a DNS name never needs. It is then made in a worker thread, since the import
takes tens of milliseconds in which a flood of datagrams would overflow the socket's
buffer and lose the queries behind it: meanwhile datagrams wait in the UDP protocol (as
many as a socket buffer would hold) and TCP connections stop reading. Forwarded queries run as tasks so a
slow upstream never holds up other clients; so does a prepared query waiting on its
failover, which is asked again once the other datacenter's answer landed. Nothing a client sends may stop the
listener: every failure is logged and the packet dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from waypost.dns.recursor import Recursor
from waypost.dns.wire import Forward

if TYPE_CHECKING:
    from waypost.dns.resolver import Resolver

__all__ = ["DnsServer"]

log = logging.getLogger("waypost.dns")

_TCP_IDLE_TIMEOUT = 8.0  # miekg/dns's default, which Consul inherits
_MAX_FORWARDS = 1024
_MAX_TCP_BACKLOG = 1 << 20
_BIND_ATTEMPTS = 16
_MAX_HELD = 1024
"""Datagrams kept while the resolver is being made; past that they are dropped, as the
socket would drop them."""

Handle = Callable[[bytes, bool, str], "bytes | Forward | None"]


class DnsServer:
    """Serves ``resolver`` on ``host:port`` over UDP and TCP (same port, as Consul does).

    With ``port=0`` the system picks a port free for both transports; read it from
    :attr:`port` after :meth:`start`.
    """

    def __init__(
        self,
        resolver: Resolver | Callable[[], Resolver],
        host: str = "127.0.0.1",
        port: int = 8600,
        *,
        recursor: Recursor | None = None,
        tcp_idle_timeout: float = _TCP_IDLE_TIMEOUT,
    ) -> None:
        """``resolver`` or the function that makes it on the first query; without
        ``recursor`` it is made at once, for the recursors its configuration names."""
        self._resolver: Resolver | None = None
        self._make: Callable[[], Resolver] | None = None
        if callable(resolver):
            self._make = resolver
        else:
            self._resolver = resolver
        self.host = host
        self.port = port
        self.tcp_idle_timeout = tcp_idle_timeout
        self._recursor = recursor or Recursor.from_config(self.resolver.config)
        self._making: asyncio.Future[Resolver] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._forwards: set[asyncio.Task[None]] = set()

    @property
    def resolver(self) -> Resolver:
        """The resolver, made here and now if it was not (only the constructor needs that:
        the listeners wait for ``making``)."""
        if self._resolver is None:
            assert self._make is not None
            self._resolver, self._make = self._make(), None
        return self._resolver

    @property
    def ready(self) -> bool:
        return self._resolver is not None

    def making(self) -> asyncio.Future[Resolver] | None:
        """None once the resolver is made; else the making of it in a worker thread, begun
        now if it was not under way. One that fails is logged, and the next query tries again."""
        if self._resolver is not None:
            return None
        if self._making is None:
            assert self._make is not None
            self._making = asyncio.get_running_loop().run_in_executor(None, self._make)
            self._making.add_done_callback(self._made)
        return self._making

    def _made(self, making: asyncio.Future[Resolver]) -> None:
        self._making = None
        if making.cancelled():
            return
        if (exc := making.exception()) is not None:
            log.error("the DNS resolver could not be made: %s", exc)
            return
        self._resolver, self._make = making.result(), None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(_BIND_ATTEMPTS):
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
                )
            except OSError as exc:
                raise _bind_error(exc, self.host, self.port) from None
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await loop.create_server(lambda: _TcpProtocol(self), self.host, port)
            except OSError:
                udp.close()
                if self.port:
                    raise
                continue
            self._udp, self.port = udp, port
            return
        raise OSError(f"no port free for both UDP and TCP on {self.host}")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for task in list(self._forwards):
            task.cancel()
        if self._forwards:
            await asyncio.gather(*self._forwards, return_exceptions=True)

    def forward(self, request: Forward, tcp: bool, send: Callable[[bytes], None], client_ip: str) -> None:
        """Relay ``request`` through the recursors (or to its datacenter) in the background;
        SERVFAIL on failure."""
        if len(self._forwards) >= _MAX_FORWARDS:
            send(request.servfail)
            return
        task = asyncio.get_running_loop().create_task(self._relay(request, tcp, send, client_ip))
        self._forwards.add(task)
        task.add_done_callback(self._forwards.discard)

    async def _relay(
        self, request: Forward, tcp: bool, send: Callable[[bytes], None], client_ip: str
    ) -> None:
        remote = self.resolver.remote
        try:
            if request.prepared_query:
                reply = await self._failed_over(request, tcp, client_ip)
            elif request.datacenter and remote is not None:
                reply = await remote.resolve(request.datacenter, request.query, tcp)
            else:
                reply = await self._recursor.resolve(request.query, tcp)
        except Exception:
            log.exception("DNS forwarding failed")
            reply = None
        send(reply if reply is not None else request.servfail)

    async def _failed_over(self, request: Forward, tcp: bool, client_ip: str) -> bytes | None:
        """The answer once the query's failover landed, waited for as long as a relay to
        another datacenter's DNS (``recursor_timeout``); None (SERVFAIL) past that."""
        resolver = self.resolver
        try:
            await asyncio.wait_for(
                resolver.backend.fail_over(request.prepared_query), resolver.config.recursor_timeout
            )
        except TimeoutError:
            return None
        reply = resolver.handle(request.query, tcp, client_ip)
        return reply if isinstance(reply, bytes) else None


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._handle: Handle | None = server.resolver.handle if server.ready else None
        self._held: list[tuple[bytes, tuple[str | int, ...]]] = []
        self._transport: asyncio.DatagramTransport | None = None

    def _hold(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        """A datagram that came before the resolver was made waits for it."""
        making = self._server.making()
        if making is None:
            self._handle = self._server.resolver.handle
            self.datagram_received(data, addr)
            return
        if not self._held:
            making.add_done_callback(self._release)
        if len(self._held) < _MAX_HELD:
            self._held.append((data, addr))

    def _release(self, _: object) -> None:
        held, self._held = self._held, []
        if not self._server.ready:
            return  # its making failed: these are dropped, the next datagram tries again
        self._handle = self._server.resolver.handle
        for data, addr in held:
            self.datagram_received(data, addr)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        transport = self._transport
        if transport is None:
            return
        if self._handle is None:
            self._hold(data, addr)
            return
        try:
            reply = self._handle(data, False, str(addr[0]))
            if reply is None:
                return
            if type(reply) is bytes:
                transport.sendto(reply, addr)
            elif isinstance(reply, Forward):
                self._server.forward(reply, False, lambda out: transport.sendto(out, addr), str(addr[0]))
        except Exception:
            log.exception("dropping DNS datagram from %s", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("DNS UDP socket error: %s", exc)


class _TcpProtocol(asyncio.Protocol):
    """Length-prefixed DNS over one TCP connection; pipelined queries are answered in turn."""

    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._handle: Handle | None = server.resolver.handle if server.ready else None
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._client_ip = ""
        self._last = 0.0
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._client_ip = str(peer[0]) if peer else ""
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._idle = loop.call_later(self._server.tcp_idle_timeout, self._check_idle)
        if self._handle is None and (making := self._server.making()) is not None:
            self._transport.pause_reading()  # until the resolver is made
            making.add_done_callback(self._resume)
        elif self._handle is None:
            self._handle = self._server.resolver.handle

    def _resume(self, _: object) -> None:
        transport = self._transport
        if transport is None:
            return
        if not self._server.ready:
            transport.close()
            return
        self._handle = self._server.resolver.handle
        transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._idle is not None:
            self._idle.cancel()

    def data_received(self, data: bytes) -> None:
        self._last = asyncio.get_running_loop().time()
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 2:
            size = int.from_bytes(buffer[:2], "big")
            if len(buffer) < 2 + size:
                break
            query = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            self._answer(query)

    def _answer(self, query: bytes) -> None:
        handle = self._handle
        assert handle is not None  # reading is paused until the resolver is made
        try:
            reply = handle(query, True, self._client_ip)
            if reply is None:
                return
            if type(reply) is bytes:
                self._send(reply)
            elif isinstance(reply, Forward):
                self._server.forward(reply, True, self._send, self._client_ip)
        except Exception:
            log.exception("dropping DNS query on TCP")

    def _send(self, reply: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > _MAX_TCP_BACKLOG:
            transport.abort()
            return
        transport.write(len(reply).to_bytes(2, "big") + reply)

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        remaining = self._last + self._server.tcp_idle_timeout - loop.time()
        if remaining > 0:
            self._idle = loop.call_later(remaining, self._check_idle)
        elif self._transport is not None:
            self._transport.close()


def _bind_error(exc: OSError, host: str, port: int) -> OSError:
    """The reason a UDP bind failed: uvloop keeps it only as the exception's cause, so its
    message alone ("could not bind to local_addr") would not say the port is taken."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    reason = cause.strerror or str(cause)
    return OSError(cause.errno, f"error while attempting to bind DNS on {host}:{port}: {reason.lower()}")
