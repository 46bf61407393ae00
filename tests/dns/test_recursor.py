"""Forwarding to upstream resolvers on 127.0.0.1."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator

import dns.message
import dns.rcode
import pytest
from dnskit import Upstream

from waypost.dns.recursor import Recursor, acceptable


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    await server.start()
    yield server
    await server.stop()


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def query(name: str) -> bytes:
    return dns.message.make_query(name, "A", id=321).to_wire()


@pytest.mark.parametrize("tcp", [False, True])
async def test_first_good_upstream_answers(upstream: Upstream, tcp: bool) -> None:
    recursor = Recursor([("127.0.0.1", closed_port()), ("127.0.0.1", upstream.port)], timeout=1.0)
    reply = await recursor.resolve(query("example.com"), tcp)
    assert reply is not None
    message = dns.message.from_wire(reply)
    assert message.id == 321
    assert message.answer[0].to_text() == "example.com. 60 IN A 93.184.216.34"


async def test_nxdomain_is_relayed(upstream: Upstream) -> None:
    reply = await Recursor([("127.0.0.1", upstream.port)]).resolve(query("nothing.test"), False)
    assert reply is not None
    assert dns.message.from_wire(reply).rcode() == dns.rcode.NXDOMAIN


async def test_servfail_moves_to_the_next_upstream(upstream: Upstream) -> None:
    other = Upstream("192.0.2.1")
    await other.start()
    try:
        recursor = Recursor([("127.0.0.1", upstream.port), ("127.0.0.1", other.port)])
        assert await recursor.resolve(query("fail.test"), False) is None
        assert upstream.queries == other.queries == ["fail.test."]
    finally:
        await other.stop()


async def test_timeout_gives_up(upstream: Upstream) -> None:
    recursor = Recursor([("127.0.0.1", upstream.port)], timeout=0.05)
    assert await recursor.resolve(query("silent.test"), False) is None


def test_strategies_order_upstreams() -> None:
    upstreams = [("127.0.0.1", p) for p in range(1, 6)]
    assert Recursor(upstreams).order() == upstreams
    shuffled = {
        tuple(Recursor(upstreams, strategy="random", rng=random.Random(s)).order()) for s in range(20)
    }
    assert len(shuffled) > 1
    assert all(sorted(order) == upstreams for order in shuffled)


@pytest.mark.parametrize(
    ("reply", "ok"),
    [
        (b"\x01\x41\x81\x80" + b"\x00" * 8, True),
        (b"\x01\x41\x81\x83" + b"\x00" * 8, True),
        (b"\x01\x41\x81\x82" + b"\x00" * 8, False),
        (b"\x01\x41\x81\x85" + b"\x00" * 8, False),
        (b"\x01\x42\x81\x80" + b"\x00" * 8, False),
        (b"\x01\x41\x01\x80" + b"\x00" * 8, False),
        (b"\x01\x41\x81", False),
    ],
)
def test_acceptable(reply: bytes, ok: bool) -> None:
    assert acceptable(query("x"), reply) is ok
