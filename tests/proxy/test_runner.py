"""The proxy as a whole against a real agent: start-up errors, a service that does not exist
yet, listeners asked for by ``Meta.proxy_port``, and the status endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import pytest

from http_backends import Backend, fetch, wait_applied
from waypost.client import ApiClient
from waypost.proxy.config import ListenerConfig, ProxyConfig
from waypost.proxy.runner import Proxy, StartError
from waypost.proxy.status import STATUS_PATH
from waypost.testing import AgentProcess, free_port


async def test_a_port_in_use_is_a_start_up_error_naming_the_listener(dev_agent: AgentProcess) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    first = ListenerConfig("ok", "127.0.0.1", free_port())
    busy = ListenerConfig("web", "127.0.0.1", port)
    try:
        async with ApiClient(dev_agent.address) as api:
            proxy = Proxy(ProxyConfig([first, busy], meta_listeners=False), api)
            with pytest.raises(
                StartError, match=rf"tcp listener 127.0.0.1:{port} for service 'web': cannot listen"
            ):
                await proxy.start()
            assert proxy.listeners == {}  # the first listener was closed again
    finally:
        taken.close()


async def test_a_filter_the_agent_rejects_is_a_start_up_error(dev_agent: AgentProcess) -> None:
    bad = ListenerConfig("web", "127.0.0.1", free_port(), filter="Service.Port ==")
    async with ApiClient(dev_agent.address) as api:
        proxy = Proxy(ProxyConfig([bad], meta_listeners=False), api)
        with pytest.raises(
            StartError, match=r"for service 'web': the agent rejected filter 'Service.Port ==': "
        ):
            await proxy.start()


async def test_an_unknown_service_waits_with_a_log_line(
    dev_agent: AgentProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "waypost.proxy")
    web = ListenerConfig("later", "127.0.0.1", free_port())
    async with Backend("x") as backend, ApiClient(dev_agent.address) as api:
        proxy = Proxy(ProxyConfig([web], meta_listeners=False, status_addr="127.0.0.1:0"), api, wait="2s")
        await proxy.start()
        try:
            pool = proxy.listeners[web].pool
            await wait_applied(lambda: pool.index, dev_agent, "later")
            assert (
                "service 'later': no passing instances (unknown service or none healthy); waiting"
                in caplog.text
            )
            dev_agent.put(
                "/v1/agent/service/register", {"ID": "later-1", "Name": "later", "Port": backend.port}
            )
            await wait_applied(lambda: pool.index, dev_agent, "later")
            assert await fetch(web.port) == "x"

            assert proxy.status_server is not None
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.status_server.port)
            writer.write(f"GET {STATUS_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            raw = await asyncio.wait_for(reader.read(-1), 5)
            writer.close()
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            (entry,) = json.loads(body)["Listeners"]
            assert entry["Index"] == pool.index
            assert [u["ServiceID"] for u in entry["Upstreams"]] == ["later-1"]
        finally:
            await proxy.close()
            dev_agent.request("PUT", "/v1/agent/service/deregister/later-1")


async def test_registrations_with_meta_proxy_port_get_a_listener(dev_agent: AgentProcess) -> None:
    port = free_port()
    async with Backend("m") as backend, ApiClient(dev_agent.address) as api:
        proxy = Proxy(ProxyConfig([]), api, wait="2s")
        await proxy.start()
        try:
            dev_agent.put(
                "/v1/agent/service/register",
                {"ID": "meta-1", "Name": "metaweb", "Port": backend.port, "Meta": {"proxy_port": str(port)}},
            )
            for _ in range(250):
                if any(lc.service == "metaweb" for lc in proxy.listeners):
                    break
                await asyncio.sleep(0.02)
            (made,) = proxy.listeners
            assert (made.port, made.from_meta) == (port, True)
            await wait_applied(lambda: proxy.listeners[made].pool.index, dev_agent, "metaweb")
            assert await fetch(port) == "m"

            dev_agent.put("/v1/agent/service/deregister/meta-1")
            for _ in range(250):
                if not proxy.listeners:
                    break
                await asyncio.sleep(0.02)
            assert proxy.listeners == {}
            with pytest.raises(ConnectionRefusedError):
                await fetch(port)
        finally:
            await proxy.close()
            dev_agent.request("PUT", "/v1/agent/service/deregister/meta-1")
