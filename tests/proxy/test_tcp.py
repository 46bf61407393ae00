"""The TCP data plane with real traffic on loopback: balance modes, weights, failover,
catalog changes in the next new connection, and draining."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from http_backends import Backend, fetch, wait_applied
from waypost.client import ApiClient
from waypost.proxy.config import ListenerConfig, OutlierConfig, ProxyConfig
from waypost.proxy.pool import Pool
from waypost.proxy.runner import Proxy
from waypost.testing import AgentProcess, free_port


@contextlib.asynccontextmanager
async def running(agent: AgentProcess, *listeners: ListenerConfig, **config: Any) -> AsyncIterator[Proxy]:
    async with ApiClient(agent.address) as api:
        proxy = Proxy(
            ProxyConfig(list(listeners), meta_listeners=False, **config), api, wait="2s", rng=random.Random(7)
        )
        await proxy.start()
        try:
            yield proxy
        finally:
            await proxy.close()


def listener(service: str, **kw: Any) -> ListenerConfig:
    return ListenerConfig(service, "127.0.0.1", free_port(), **kw)


def register(agent: AgentProcess, service: str, sid: str, port: int, **extra: Any) -> None:
    agent.put("/v1/agent/service/register", {"ID": sid, "Name": service, "Port": port, **extra})


def deregister(agent: AgentProcess, *sids: str) -> None:
    """Clean-up: the ones already gone answer 404, which is fine."""
    for sid in sids:
        agent.request("PUT", f"/v1/agent/service/deregister/{sid}")


async def spread(port: int, count: int) -> Counter[str]:
    return Counter([await fetch(port) for _ in range(count)])


async def test_round_robin_reaches_every_instance_and_follows_the_catalog(dev_agent: AgentProcess) -> None:
    async with Backend("a") as a, Backend("b") as b, Backend("c") as c, Backend("d") as d:
        for backend in (a, b, c):
            register(
                dev_agent, "rr", f"rr-{backend.name}", backend.port, Check={"TTL": "60s", "Status": "passing"}
            )
        web = listener("rr")
        try:
            async with running(dev_agent, web) as proxy:
                pool = proxy.listeners[web].pool
                await wait_applied(lambda: pool.index, dev_agent, "rr")
                assert await spread(web.port, 30) == {"a": 10, "b": 10, "c": 10}

                dev_agent.put("/v1/agent/check/fail/service:rr-a")
                await wait_applied(lambda: pool.index, dev_agent, "rr")
                assert set(await spread(web.port, 10)) == {"b", "c"}

                dev_agent.put("/v1/agent/service/maintenance/rr-b?enable=true")
                await wait_applied(lambda: pool.index, dev_agent, "rr")
                assert set(await spread(web.port, 5)) == {"c"}

                register(dev_agent, "rr", "rr-d", d.port)
                await wait_applied(lambda: pool.index, dev_agent, "rr")
                assert set(await spread(web.port, 10)) == {"c", "d"}

                deregister(dev_agent, "rr-c")
                dev_agent.put("/v1/agent/service/maintenance/rr-b?enable=false")
                dev_agent.put("/v1/agent/check/pass/service:rr-a")
                await wait_applied(lambda: pool.index, dev_agent, "rr")
                assert set(await spread(web.port, 9)) == {"a", "b", "d"}
        finally:
            deregister(dev_agent, "rr-a", "rr-b", "rr-c", "rr-d")


async def test_weighted_honours_passing_and_warning_weights(dev_agent: AgentProcess) -> None:
    async with Backend("a") as a, Backend("b") as b:
        check = {"TTL": "60s", "Status": "passing"}
        register(dev_agent, "wt", "wt-a", a.port, Weights={"Passing": 3, "Warning": 1}, Check=check)
        register(dev_agent, "wt", "wt-b", b.port, Weights={"Passing": 1, "Warning": 1})
        web = listener("wt", balance="weighted")
        try:
            async with running(dev_agent, web) as proxy:
                pool = proxy.listeners[web].pool
                await wait_applied(lambda: pool.index, dev_agent, "wt")
                assert await spread(web.port, 40) == {"a": 30, "b": 10}
                dev_agent.put("/v1/agent/check/warn/service:wt-a")
                await wait_applied(lambda: pool.index, dev_agent, "wt")
                assert await spread(web.port, 20) == {"a": 10, "b": 10}
        finally:
            deregister(dev_agent, "wt-a", "wt-b")


@pytest.mark.parametrize("balance", ["least_conn", "random_two"])
async def test_other_modes_use_every_instance(dev_agent: AgentProcess, balance: str) -> None:
    async with Backend("a") as a, Backend("b") as b:
        register(dev_agent, "md", "md-a", a.port)
        register(dev_agent, "md", "md-b", b.port)
        web = listener("md", balance=balance)
        try:
            async with running(dev_agent, web) as proxy:
                await wait_applied(lambda: proxy.listeners[web].pool.index, dev_agent, "md")
                assert set(await spread(web.port, 20)) == {"a", "b"}
        finally:
            deregister(dev_agent, "md-a", "md-b")


async def test_a_refused_connect_retries_another_instance_and_ejects_after_n(dev_agent: AgentProcess) -> None:
    async with Backend("live") as live:
        register(dev_agent, "fo", "fo-dead", free_port())
        register(dev_agent, "fo", "fo-live", live.port)
        web = listener("fo")
        try:
            async with running(
                dev_agent, web, outlier=OutlierConfig(consecutive_failures=2, ejection=60)
            ) as proxy:
                pool = proxy.listeners[web].pool
                await wait_applied(lambda: pool.index, dev_agent, "fo")
                assert await spread(web.port, 10) == {"live": 10}
                ejected = {u["ServiceID"]: u["Ejected"] for u in proxy.status()["Listeners"][0]["Upstreams"]}
                assert ejected == {"fo-dead": True, "fo-live": False}
        finally:
            deregister(dev_agent, "fo-dead", "fo-live")


async def test_no_instances_refuses_the_connection_at_once(dev_agent: AgentProcess) -> None:
    web = listener("nobody-here")
    async with running(dev_agent, web) as proxy:
        await wait_applied(lambda: proxy.listeners[web].pool.index, dev_agent, "nobody-here")
        with pytest.raises((ConnectionError, OSError)):
            await fetch(web.port)


async def _open_request(port: int, pool: Pool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection with half a request sent: it stays open until the rest comes.
    Waits (up to 5 s) until the pool counts it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: test\r\n")
    await writer.drain()
    for _ in range(250):
        if pool.open_connections() == 1:
            break
        await asyncio.sleep(0.02)
    return reader, writer


@pytest.mark.parametrize(("drain", "finishes"), [(30.0, True), (0.2, False)])
async def test_deregistration_drains_open_connections(
    dev_agent: AgentProcess, drain: float, finishes: bool
) -> None:
    async with Backend("old") as old, Backend("new") as new:
        register(dev_agent, "dr", "dr-old", old.port)
        web = listener("dr", drain_timeout=drain)
        try:
            async with running(dev_agent, web) as proxy:
                pool = proxy.listeners[web].pool
                await wait_applied(lambda: pool.index, dev_agent, "dr")
                reader, writer = await _open_request(web.port, pool)
                register(dev_agent, "dr", "dr-new", new.port)
                deregister(dev_agent, "dr-old")
                await wait_applied(lambda: pool.index, dev_agent, "dr")
                assert await spread(web.port, 3) == {"new": 3}
                if not finishes:
                    await asyncio.sleep(drain + 0.3)
                writer.write(b"\r\n")
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                answer = await asyncio.wait_for(reader.read(-1), 5)
                writer.close()
                assert answer.endswith(b"old") is finishes
        finally:
            deregister(dev_agent, "dr-old", "dr-new")


async def test_an_instance_that_comes_back_keeps_its_draining_connections(dev_agent: AgentProcess) -> None:
    async with Backend("flap") as flap:
        register(dev_agent, "fl", "fl-1", flap.port)
        web = listener("fl", drain_timeout=0.5)
        try:
            async with running(dev_agent, web) as proxy:
                pool = proxy.listeners[web].pool
                await wait_applied(lambda: pool.index, dev_agent, "fl")
                reader, writer = await _open_request(web.port, pool)
                dev_agent.put("/v1/agent/service/maintenance/fl-1?enable=true")
                await wait_applied(lambda: pool.index, dev_agent, "fl")
                dev_agent.put("/v1/agent/service/maintenance/fl-1?enable=false")
                await wait_applied(lambda: pool.index, dev_agent, "fl")
                await asyncio.sleep(0.8)  # past the drain timeout it would have had
                writer.write(b"\r\n")
                await writer.drain()
                assert (await asyncio.wait_for(reader.read(-1), 5)).endswith(b"flap")
                writer.close()
        finally:
            deregister(dev_agent, "fl-1")
