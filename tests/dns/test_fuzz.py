"""Hostile input: random and mutated packets never crash the resolver or the listeners."""

from __future__ import annotations

import asyncio
import logging
import random

import dns.asyncquery
import dns.message
import pytest
from dnskit import catalog, make_resolver, texts
from hypothesis import given, settings
from hypothesis import strategies as st

from waypost.dns import DnsServer, Forward, Resolver

SEEDS = [
    dns.message.make_query(name, qtype, use_edns=edns).to_wire()
    for name, qtype in [
        ("web.service.consul", "A"),
        ("_web._tcp.consul", "SRV"),
        ("foo.node.dc1.consul", "ANY"),
        ("1.0.0.10.in-addr.arpa", "PTR"),
        ("example.com", "A"),
    ]
    for edns in (False, 0)
]
RESOLVER = make_resolver(catalog(), recursors=["127.0.0.1:9"])


def mutate(rng: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    for _ in range(rng.randint(1, 4)):
        action = rng.randrange(4)
        if action == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif action == 1 and data:
            del data[rng.randrange(len(data)) :]
        elif action == 2:
            data[rng.randrange(len(data) + 1) : 0] = rng.randbytes(rng.randint(1, 8))
        else:
            data += rng.randbytes(rng.randint(1, 64))
    return bytes(data)


def check_reply(resolver: Resolver, packet: bytes, tcp: bool) -> None:
    reply = resolver.handle(packet, tcp)
    if isinstance(reply, Forward):
        reply = reply.servfail
    if reply is not None:
        assert reply[:2] == packet[:2]
        assert reply[2] & 0x80
        if not tcp:
            assert len(reply) <= 65467


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_random_bytes(packet: bytes, tcp: bool) -> None:
    check_reply(RESOLVER, packet, tcp)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(SEEDS), st.integers(min_value=0, max_value=2**32), st.booleans())
def test_mutated_queries(seed: bytes, salt: int, tcp: bool) -> None:
    check_reply(RESOLVER, mutate(random.Random(salt), seed), tcp)


async def test_listeners_survive_a_flood_of_junk(caplog: pytest.LogCaptureFixture) -> None:
    server = DnsServer(make_resolver(catalog()), "127.0.0.1", 0)
    await server.start()
    rng = random.Random(2024)
    loop = asyncio.get_running_loop()
    try:
        sender, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", server.port)
        )
        for i in range(3000):
            packet = mutate(rng, rng.choice(SEEDS)) if i % 3 else rng.randbytes(rng.randint(0, 700))
            sender.sendto(packet)
            if i % 200 == 0:
                await asyncio.sleep(0)
        sender.close()
        for _ in range(20):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            frames = b"".join(
                len(p).to_bytes(2, "big") + p for p in (mutate(rng, rng.choice(SEEDS)) for _ in range(25))
            )
            writer.write(frames + rng.randbytes(rng.randint(0, 40)))
            await writer.drain()
            writer.close()
        query = dns.message.make_query("bar.node.consul", "A")
        for reply in (
            await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=2),
            await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=2),
        ):
            assert texts(reply.answer) == ["bar.node.consul. 0 IN A 10.0.0.2"]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        await server.stop()
