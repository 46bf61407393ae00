"""``vip_listeners`` against a real agent: a virtual IP's ports are listened on and serve the
instances behind the name, a declared virtual service's selected by the agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_backends import Backend, fetch
from waypost.client import ApiClient
from waypost.proxy.config import ProxyConfig
from waypost.proxy.runner import Proxy
from waypost.testing import AgentProcess, until, wait_for

DECLARED = 'Service == vipshop and "v2" in Tags'


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    hcl = f"virtual_ips {{ services = {{ vipshop-v2 = {json.dumps(DECLARED)} }} }}"
    with AgentProcess(["-dev", "-hcl", hcl], log_path=log) as running:
        yield running


def _vip(agent: AgentProcess, name: str) -> str:
    wait_for(lambda: agent.get(f"/v1/waypost/virtual-ip/{name}"), limit=10)
    return str(agent.get(f"/v1/waypost/virtual-ip/{name}")["IP"])


def _bound(proxy: Proxy, name: str) -> set[tuple[str, int]]:
    return {(lc.host, lc.port) for lc in proxy.listeners if lc.virtual and lc.service == name}


async def test_a_services_virtual_ip_serves_its_instances_while_they_exist(agent: AgentProcess) -> None:
    async with Backend("web-a") as backend, ApiClient(agent.address) as api:
        proxy = Proxy(ProxyConfig([], meta_listeners=False, vip_listeners=True), api, wait="2s")
        await proxy.start()
        try:
            agent.put(
                "/v1/agent/service/register", {"ID": "vipweb-1", "Name": "vipweb", "Port": backend.port}
            )
            vip = _vip(agent, "vipweb")
            await until(lambda: _bound(proxy, "vipweb") == {(vip, backend.port)})
            assert await fetch(backend.port, vip) == "web-a"
            agent.put("/v1/agent/service/deregister/vipweb-1")
            await until(lambda: not _bound(proxy, "vipweb"))
            with pytest.raises(ConnectionRefusedError):
                await fetch(backend.port, vip)
        finally:
            await proxy.close()
            agent.request("PUT", "/v1/agent/service/deregister/vipweb-1")


async def test_a_declared_virtual_service_serves_only_the_instances_it_selects(agent: AgentProcess) -> None:
    async with Backend("v2") as v2, Backend("v1") as v1, ApiClient(agent.address) as api:
        agent.put(
            "/v1/agent/service/register", {"ID": "shop-2", "Name": "vipshop", "Port": v2.port, "Tags": ["v2"]}
        )
        agent.put(
            "/v1/agent/service/register", {"ID": "shop-1", "Name": "vipshop", "Port": v1.port, "Tags": ["v1"]}
        )
        proxy = Proxy(ProxyConfig([], meta_listeners=False, vip_listeners=True), api, wait="2s")
        await proxy.start()
        try:
            declared, plain = _vip(agent, "vipshop-v2"), _vip(agent, "vipshop")
            await until(lambda: _bound(proxy, "vipshop-v2") == {(declared, v2.port)})
            await until(lambda: _bound(proxy, "vipshop") == {(plain, v1.port), (plain, v2.port)})
            assert await fetch(v2.port, declared) == "v2"
            answers = {await fetch(v1.port, plain) for _ in range(4)}
            assert answers == {"v1", "v2"}, "a service's listeners balance over all its instances"
        finally:
            await proxy.close()
            for sid in ("shop-1", "shop-2"):
                agent.request("PUT", f"/v1/agent/service/deregister/{sid}")
