"""Virtual IPs end to end: a server on the embedded store and a client agent joined to it give
the same address by real ``dig``, ``waypost proxy -vip`` serves traffic on it, and the server
keeps every address across a restart."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dig import dig
from http_backends import BackendProcess, fetch
from waypost.testing import AgentProcess, free_port, wait_for
from waypost_command import waypost_running

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed")

DECLARED = 'Service == shop and "v2" in Tags'


def _server(base: Path, **ports: int) -> AgentProcess:
    hcl = f"virtual_ips {{ services = {{ shop-v2 = {json.dumps(DECLARED)} }} }}"
    args = [
        *("-server", "-bootstrap-expect", "1", "-data-dir", str(base / "server")),
        *("-bind", "127.0.0.1", "-node", "solo", "-hcl", hcl),
    ]
    return AgentProcess(args, log_path=base / "server.log", **ports)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, AgentProcess, Path]]:
    base = tmp_path_factory.mktemp("vip")
    with _server(base) as server:
        client_args = [
            *("-data-dir", str(base / "client"), "-bind", "127.0.0.1"),
            *("-node", "edge", "-retry-join", server.server_address),
        ]
        with AgentProcess(client_args, log_path=base / "client.log") as client:
            yield server, client, base


def test_server_and_client_agent_answer_the_same_virtual_ip(
    cluster: tuple[AgentProcess, AgentProcess, Path],
) -> None:
    server, client, _ = cluster
    client.put("/v1/agent/service/register", {"Name": "shop", "ID": "shop-1", "Port": 7000, "Tags": ["v2"]})
    wait_for(lambda: dig(client, "shop.virtual.consul") and dig(server, "shop-v2.virtual.consul"), limit=10)
    (vip,) = dig(server, "shop.virtual.consul")
    assert ipaddress.ip_address(vip) in ipaddress.ip_network("127.240.0.0/12")
    assert dig(client, "shop.virtual.consul") == [vip]
    assert dig(client, "SHOP.virtual.dc1.consul") == [vip]
    assert dig(client, "shop.virtual.consul", "AAAA") == []
    assert dig(client, "shop.virtual.dc2.consul") == []
    assert dig(client, "shop-v2.virtual.consul") == dig(server, "shop-v2.virtual.consul") != [vip]
    assert dig(client, "nothing.virtual.consul") == []
    assert client.get("/v1/waypost/virtual-ips") == server.get("/v1/waypost/virtual-ips")


def test_the_proxy_serves_a_virtual_ip_that_dns_resolved(
    cluster: tuple[AgentProcess, AgentProcess, Path],
) -> None:
    server, client, base = cluster
    port = free_port()
    with BackendProcess("cart-a", port):
        client.put("/v1/agent/service/register", {"Name": "cart", "ID": "cart-1", "Port": port})
        wait_for(lambda: dig(server, "cart.virtual.consul"), limit=10)
        (vip,) = dig(client, "cart.virtual.consul")
        with waypost_running(base / "proxy.log", "proxy", "-vip", "-http-addr", client.address):

            def served() -> str:
                return asyncio.run(fetch(port, vip))

            wait_for(served, limit=15)
            assert served() == "cart-a"


def test_addresses_survive_a_server_restart_and_are_not_handed_out_again(tmp_path: Path) -> None:
    ports = {"http_port": free_port(), "dns_port": free_port(), "server_port": free_port()}
    with _server(tmp_path, **ports) as first:
        first.put("/v1/agent/service/register", {"Name": "web", "Port": 80})
        wait_for(lambda: dig(first, "web.virtual.consul"), limit=10)
        before = {row["Name"]: row["IP"] for row in first.get("/v1/waypost/virtual-ips")}
    with _server(tmp_path, **ports) as second:
        second.put("/v1/agent/service/register", {"Name": "api", "Port": 81})
        wait_for(lambda: dig(second, "api.virtual.consul"), limit=10)
        after = {row["Name"]: row["IP"] for row in second.get("/v1/waypost/virtual-ips")}
        assert dig(second, "web.virtual.consul") == [before["web"]]
    assert {name: after[name] for name in before} == before
    assert after["api"] not in before.values()
