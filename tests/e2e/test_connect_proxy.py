"""Connect end to end: two services with sidecars (the real ``waypost proxy -sidecar-for`` and
``waypost connect proxy`` on uvloop), traffic through mTLS as intentions allow or deny it,
and a CA root rotation while a connection streams.

``web``'s sidecar has ``db`` as an upstream on a local port; ``db``'s sidecar terminates
mTLS in front of an echo server. Every wait is bounded; a denied connection must end
without a byte (refused at the handshake or the first read).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from echo_server import Echo, closed
from waypost.proxy.status import STATUS_PATH
from waypost.testing import AgentProcess, free_port, wait_for
from waypost_command import waypost_running

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    with AgentProcess(["-dev", "-node", "mesh"], log_path=log) as proc:
        status, _, _ = proc.request(
            "POST",
            "/v1/agent/connect/authorize",
            json.dumps(
                {"Target": "db", "ClientCertURI": "spiffe://x.consul/ns/default/dc/dc1/svc/web"}
            ).encode(),
        )
        if status in (404, 405):
            pytest.skip("this agent has no /v1/agent/connect/authorize (intentions) yet")
        yield proc


@contextlib.contextmanager
def sidecar(agent: AgentProcess, log: Path, proxy_id: str, status_port: int, *command: str) -> Iterator[None]:
    status_addr = f"127.0.0.1:{status_port}"
    with waypost_running(
        log, *command, "-sidecar-for", proxy_id, "-http-addr", agent.address, "-status-addr", status_addr
    ):
        yield


def status(port: int) -> Any:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{STATUS_PATH}", timeout=5) as resp:
        return json.loads(resp.read())


async def roundtrip(port: int, data: bytes = b"ping") -> bytes:
    """What comes back for ``data`` through a new connection; b"" when it is cut first."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(data)), TIMEOUT)
    except (asyncio.IncompleteReadError, ConnectionError):
        return b""
    finally:
        await closed(writer)


def intention(agent: AgentProcess, action: str) -> None:
    agent.put("/v1/connect/intentions/exact?source=web&destination=db", {"Action": action})


async def until(port: int, want: bytes, limit: float) -> None:
    """New connections give ``want`` within ``limit`` seconds (each try is one connection)."""
    deadline = asyncio.get_running_loop().time() + limit
    while (got := await roundtrip(port)) != want:
        assert asyncio.get_running_loop().time() < deadline, f"still {got!r} after {limit}s"
        await asyncio.sleep(0.05)


async def test_two_services_with_sidecars(agent: AgentProcess, tmp_path: Path) -> None:
    app = Echo()
    app_port = await app.start()
    db_public, web_public, upstream = free_port(), free_port(), free_port()
    db_status, web_status = free_port(), free_port()
    local = {"bind_address": "127.0.0.1"}
    agent.put(
        "/v1/agent/service/register",
        {
            "Name": "db",
            "Port": app_port,
            "Connect": {"SidecarService": {"Port": db_public, "Proxy": {"Config": local}}},
        },
    )
    web_proxy: dict[str, Any] = {
        "Config": local,
        "Upstreams": [{"DestinationName": "db", "LocalBindPort": upstream}],
    }
    web: dict[str, Any] = {"Name": "web", "Port": 1}
    web_sidecar = {"Port": web_public}
    agent.put(
        "/v1/agent/service/register",
        {**web, "Connect": {"SidecarService": {**web_sidecar, "Proxy": web_proxy}}},
    )
    intention(agent, "allow")
    with (
        sidecar(agent, tmp_path / "db.log", "db", db_status, "proxy"),
        sidecar(agent, tmp_path / "web.log", "web-sidecar-proxy", web_status, "connect", "proxy"),
    ):
        wait_for(lambda: status(db_status)["Inbound"] == db_public, limit=20)
        wait_for(
            lambda: status(web_status)["Listeners"][0]["Upstreams"] == [f"127.0.0.1:{db_public}"], limit=30
        )

        # Allowed: traffic flows through both sidecars, over mTLS between them.
        assert await roundtrip(upstream, b"hello db") == b"hello db"

        # Denied: the next connections are refused (within a second of the change).
        intention(agent, "deny")
        await until(upstream, b"", limit=1.0)
        assert status(db_status)["Refused"] >= 1
        intention(agent, "allow")
        await until(upstream, b"ping", limit=1.0)
        # The decision is kept until an intention changes: more connections ask nobody.
        asked = status(db_status)["Authorizations"]
        for _ in range(5):
            assert await roundtrip(upstream) == b"ping"
        assert status(db_status)["Authorizations"] == asked

        # The registration is followed: an upstream added later gets its listener.
        second = free_port()
        more = {
            **web_proxy,
            "Upstreams": [*web_proxy["Upstreams"], {"DestinationName": "db", "LocalBindPort": second}],
        }
        agent.put(
            "/v1/agent/service/register",
            {**web, "Connect": {"SidecarService": {**web_sidecar, "Proxy": more}}},
        )
        wait_for(lambda: len(status(web_status)["Listeners"]) == 2, limit=TIMEOUT)
        wait_for(lambda: all(lst["Upstreams"] for lst in status(web_status)["Listeners"]), limit=30)
        assert await roundtrip(second, b"second") == b"second"

        # A root rotation while a connection streams: it keeps flowing, and new ones work.
        reader, writer = await asyncio.open_connection("127.0.0.1", upstream)
        changes = status(db_status)["Certificates"]
        for i in range(40):
            chunk = f"chunk {i:03d};".encode()
            writer.write(chunk)
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(len(chunk)), TIMEOUT) == chunk
            if i == 10:
                agent.put(
                    "/v1/connect/ca/configuration", {"Provider": "consul", "Config": {"LeafCertTTL": "48h"}}
                )
            if i == 20:
                wait_for(lambda: status(db_status)["Certificates"] >= changes + 2, limit=TIMEOUT)
                assert await roundtrip(upstream, b"fresh") == b"fresh"
        await closed(writer)
    await app.close()


async def test_proxies_from_flags(agent: AgentProcess, tmp_path: Path) -> None:
    """``-service``, ``-listen``, ``-service-addr`` and ``-upstream`` instead of a registered
    sidecar's settings (the destination's sidecar is still found through the catalog)."""
    app = Echo()
    app_port = await app.start()
    public, upstream, ledger_status, shop_status = free_port(), free_port(), free_port(), free_port()
    sidecar_service = {"Port": public, "Proxy": {"Config": {"bind_address": "127.0.0.1"}}}
    agent.put(
        "/v1/agent/service/register",
        {"Name": "ledger", "Port": app_port, "Connect": {"SidecarService": sidecar_service}},
    )
    agent.put("/v1/connect/intentions/exact?source=shop&destination=ledger", {"Action": "allow"})
    ledger = (
        "connect",
        "proxy",
        "-service",
        "ledger",
        "-listen",
        f"127.0.0.1:{public}",
        "-service-addr",
        f"127.0.0.1:{app_port}",
    )
    shop = ("connect", "proxy", "-service", "shop", "-upstream", f"ledger:{upstream}")
    with (
        sidecar(agent, tmp_path / "ledger.log", "", ledger_status, *ledger),
        sidecar(agent, tmp_path / "shop.log", "", shop_status, *shop),
    ):
        wait_for(lambda: status(ledger_status)["Inbound"] == public, limit=20)
        wait_for(
            lambda: status(shop_status)["Listeners"][0]["Upstreams"] == [f"127.0.0.1:{public}"], limit=30
        )
        assert await roundtrip(upstream, b"from flags") == b"from flags"
    await app.close()
