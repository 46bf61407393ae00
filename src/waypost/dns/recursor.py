"""Forwarding names outside the domain to upstream resolvers, as Consul's recursors do.

Upstreams are tried one after another (in configured order, or shuffled with the
``random`` strategy), each with ``recursor_timeout``. The first reply whose rcode is
NOERROR or NXDOMAIN is relayed untouched; any other rcode, a timeout or a socket error
moves on to the next upstream. The query travels over the transport the client used.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from waypost.dns.config import DnsConfig

__all__ = ["Recursor", "acceptable"]

_RELAYED_RCODES = (0, 3)


def acceptable(query: bytes, reply: bytes) -> bool:
    """Whether ``reply`` answers ``query`` with an rcode Consul relays."""
    return (
        len(reply) >= 12
        and reply[:2] == query[:2]
        and bool(reply[2] & 0x80)
        and (reply[3] & 0x0F) in _RELAYED_RCODES
    )


class Recursor:
    def __init__(
        self,
        upstreams: Sequence[tuple[str, int]],
        *,
        timeout: float = 2.0,
        strategy: str = "sequential",
        rng: random.Random | None = None,
    ) -> None:
        self._upstreams = list(upstreams)
        self._timeout = timeout
        self._random = strategy == "random"
        self._rng = rng or random.Random()

    @classmethod
    def from_config(cls, config: DnsConfig, rng: random.Random | None = None) -> Recursor:
        return cls(
            config.recursors, timeout=config.recursor_timeout, strategy=config.recursor_strategy, rng=rng
        )

    def order(self) -> list[tuple[str, int]]:
        """The upstreams in the order this query should try them."""
        if self._random:
            return self._rng.sample(self._upstreams, len(self._upstreams))
        return list(self._upstreams)

    async def resolve(self, query: bytes, tcp: bool) -> bytes | None:
        """The first acceptable upstream reply, or ``None`` when every upstream failed."""
        for upstream in self.order():
            try:
                async with asyncio.timeout(self._timeout):
                    reply = await (_tcp_exchange if tcp else _udp_exchange)(upstream, query)
            except (OSError, TimeoutError, EOFError, asyncio.IncompleteReadError):
                continue
            if acceptable(query, reply):
                return reply
        return None


class _OneReply(asyncio.DatagramProtocol):
    def __init__(self, query_id: bytes, reply: asyncio.Future[bytes]) -> None:
        self._id = query_id
        self._reply = reply

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if data[:2] == self._id and not self._reply.done():
            self._reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self._reply.done():
            self._reply.set_exception(exc)


async def _udp_exchange(upstream: tuple[str, int], query: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _OneReply(query[:2], reply), remote_addr=upstream
    )
    try:
        transport.sendto(query)
        return await reply
    finally:
        transport.close()


async def _tcp_exchange(upstream: tuple[str, int], query: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*upstream)
    try:
        writer.write(len(query).to_bytes(2, "big") + query)
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        return await reader.readexactly(size)
    finally:
        writer.close()
