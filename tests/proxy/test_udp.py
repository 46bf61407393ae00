"""The UDP data plane with real datagrams: sessions per client, balancing, ICMP failover."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from typing import cast

from http_backends import wait_applied
from waypost.client import ApiClient
from waypost.proxy.config import ListenerConfig, OutlierConfig, ProxyConfig
from waypost.proxy.runner import Proxy
from waypost.testing import AgentProcess, free_port


class _Echo(asyncio.DatagramProtocol):
    def __init__(self, name: bytes) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # CPython's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name + b":" + data, addr)


@contextlib.asynccontextmanager
async def echo(name: str) -> AsyncIterator[int]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Echo(name.encode()), local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answers: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.answers.put_nowait(data)


async def ask(port: int, payload: bytes, tries: int = 1) -> list[bytes]:
    """``tries`` datagrams from one fresh client socket; their answers."""
    transport, client = await asyncio.get_running_loop().create_datagram_endpoint(
        _Client, remote_addr=("127.0.0.1", port)
    )
    try:
        out = []
        for _ in range(tries):
            transport.sendto(payload)
            out.append(await asyncio.wait_for(client.answers.get(), 5))
        return out
    finally:
        transport.close()


async def test_datagrams_are_balanced_per_client_and_answered(dev_agent: AgentProcess) -> None:
    async with echo("a") as a, echo("b") as b:
        for sid, port in (("dns-a", a), ("dns-b", b)):
            dev_agent.put("/v1/agent/service/register", {"ID": sid, "Name": "udns", "Port": port})
        config = ListenerConfig("udns", "127.0.0.1", free_port(socket.SOCK_DGRAM), protocol="udp")
        try:
            async with ApiClient(dev_agent.address) as api:
                proxy = Proxy(
                    ProxyConfig([config], meta_listeners=False), api, wait="2s", rng=random.Random(1)
                )
                await proxy.start()
                try:
                    pool = proxy.listeners[config].pool
                    await wait_applied(lambda: pool.index, dev_agent, "udns")
                    assert await ask(config.port, b"q", tries=3) == [b"a:q"] * 3  # one session, one instance
                    assert await ask(config.port, b"r") == [b"b:r"]
                    dev_agent.put("/v1/agent/service/deregister/dns-a")
                    await wait_applied(lambda: pool.index, dev_agent, "udns")
                    assert [await ask(config.port, b"s") for _ in range(3)] == [[b"b:s"]] * 3
                finally:
                    await proxy.close()
        finally:
            for sid in ("dns-a", "dns-b"):
                dev_agent.request("PUT", f"/v1/agent/service/deregister/{sid}")


async def test_an_instance_that_refuses_datagrams_hands_them_to_another(dev_agent: AgentProcess) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
    async with echo("live") as live:
        dev_agent.put("/v1/agent/service/register", {"ID": "icmp-dead", "Name": "icmp", "Port": dead})
        dev_agent.put("/v1/agent/service/register", {"ID": "icmp-live", "Name": "icmp", "Port": live})
        config = ListenerConfig("icmp", "127.0.0.1", free_port(socket.SOCK_DGRAM), protocol="udp")
        try:
            async with ApiClient(dev_agent.address) as api:
                outlier = OutlierConfig(consecutive_failures=2, ejection=60)
                proxy = Proxy(ProxyConfig([config], outlier=outlier, meta_listeners=False), api, wait="2s")
                await proxy.start()
                try:
                    pool = proxy.listeners[config].pool
                    await wait_applied(lambda: pool.index, dev_agent, "icmp")
                    # Every client is answered, whichever instance its session started on.
                    assert [await ask(config.port, b"q") for _ in range(4)] == [[b"live:q"]] * 4
                    # Round robin sent two sessions to the dead one: both refused, so it is ejected.
                    assert [pool.outlier.ejected(u.key) for u in pool.upstreams if u.port == dead] == [True]
                finally:
                    await proxy.close()
        finally:
            for sid in ("icmp-dead", "icmp-live"):
                dev_agent.request("PUT", f"/v1/agent/service/deregister/{sid}")
