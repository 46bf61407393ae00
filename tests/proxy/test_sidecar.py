"""What the sidecar takes from a connect-proxy registration, the errors naming what is missing,
and (against a real agent) a registration whose destination changes, followed live."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from echo_server import closed
from waypost.client import ApiClient
from waypost.proxy.config import ConfigError
from waypost.proxy.mtls import Certificates, peer_uri
from waypost.proxy.sidecar import DEFAULT_BIND, Sidecar, SidecarConfig, SidecarError
from waypost.testing import AgentProcess, free_port

TIMEOUT = 10.0


def _proxy(**proxy: Any) -> dict[str, Any]:
    return {"Kind": "connect-proxy", "Port": 21000, "Proxy": {"DestinationServiceName": "web", **proxy}}


def test_the_registration_gives_listeners_and_the_local_service() -> None:
    upstreams = [
        {"DestinationName": "db", "LocalBindPort": 9191},
        {
            "DestinationName": "cache",
            "LocalBindPort": 9292,
            "LocalBindAddress": "127.0.0.2",
            "Datacenter": "dc2",
        },
        {"DestinationType": "prepared_query", "DestinationName": "q", "LocalBindPort": 9393},
    ]
    svc = _proxy(LocalServicePort=8080, Upstreams=upstreams, Config={"bind_address": "127.0.0.1"})
    config = SidecarConfig.from_registration("web-sidecar-proxy", svc, None)
    assert (config.destination, config.bind, config.port) == ("web", "127.0.0.1", 21000)
    assert (config.local_address, config.local_port) == ("127.0.0.1", 8080)
    assert config.upstreams == (("db", "", "127.0.0.1", 9191), ("cache", "dc2", "127.0.0.2", 9292))


def test_the_local_port_defaults_to_the_destinations_and_the_bind_to_consuls() -> None:
    config = SidecarConfig.from_registration("p", _proxy(), {"ID": "web", "Port": 8081})
    assert (config.local_port, config.bind) == (8081, DEFAULT_BIND)


@pytest.mark.parametrize(
    ("svc", "parent", "message"),
    [
        ({"Kind": "", "Port": 1}, None, "is not a connect-proxy registration"),
        (None, None, "is not a connect-proxy registration"),
        ({"Kind": "connect-proxy", "Port": 1, "Proxy": {}}, None, "no Proxy.DestinationServiceName"),
        ({**_proxy(), "Port": 0}, None, "no port to listen on"),
        (_proxy(), None, "no Proxy.LocalServicePort and no destination port"),
    ],
)
def test_a_registration_that_cannot_be_proxied_is_named(svc: Any, parent: Any, message: str) -> None:
    with pytest.raises(SidecarError, match=message):
        SidecarConfig.from_registration("p", svc, parent)


def test_flags_give_a_proxy_nobody_registered() -> None:
    config = SidecarConfig.from_flags("web", "127.0.0.1:21001", "127.0.0.1:8080", ["db:9191", "cache:9292"])
    assert (config.destination, config.bind, config.port) == ("web", "127.0.0.1", 21001)
    assert (config.local_address, config.local_port) == ("127.0.0.1", 8080)
    assert config.upstreams == (("db", "", "127.0.0.1", 9191), ("cache", "", "127.0.0.1", 9292))
    assert SidecarConfig.from_flags("web", "", "", ["db:9191"]).port == 0  # upstreams only


@pytest.mark.parametrize(
    ("listen", "backend", "upstreams", "error", "message"),
    [
        ("127.0.0.1:21001", "", [], SidecarError, "-service-addr must be specified with -listen"),
        ("", "", ["db"], SidecarError, "Error parsing upstream 'db': expected name:port"),
        ("", "", ["db:99999"], SidecarError, "expected name:port"),
        ("nowhere:1", "127.0.0.1:1", [], ConfigError, "-listen: 'nowhere' is not an IP address"),
    ],
)
def test_bad_flags_are_named(
    listen: str, backend: str, upstreams: list[str], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        SidecarConfig.from_flags("web", listen, backend, upstreams)


async def _tagged(tag: bytes) -> asyncio.Server:
    """A local service that answers every connection's first bytes with ``tag``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(tag)
        await closed(writer)

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def _through(port: int, certs: Certificates) -> tuple[str, bytes]:
    """A new mTLS connection to a sidecar: the identity it presented and what came back."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=certs.client())
        try:
            uri, _ = peer_uri(writer.transport)
            writer.write(b"?")
            return uri, await reader.read(16)
        finally:
            await closed(writer)


async def test_a_sidecar_follows_a_new_destination_without_a_restart(tmp_path: Path) -> None:
    public = free_port()
    services = {b"alpha": await _tagged(b"alpha"), b"beta": await _tagged(b"beta")}

    def registration(name: bytes) -> dict[str, Any]:
        port = services[name].sockets[0].getsockname()[1]
        proxy = {"DestinationServiceName": name.decode(), "LocalServicePort": port}
        config = {"Config": {"bind_address": "127.0.0.1"}}
        return {
            "ID": "mover",
            "Name": "mover",
            "Kind": "connect-proxy",
            "Port": public,
            "Proxy": {**proxy, **config},
        }

    with AgentProcess(["-dev"], log_path=tmp_path / "agent.log") as agent:
        async with ApiClient(agent.address) as api:
            await api.put("/v1/agent/service/register", registration(b"alpha"))
            sidecar = Sidecar(api, "mover", wait="5s")
            web = Certificates(api, "web", wait="5s")
            await sidecar.start()
            try:
                async with asyncio.timeout(TIMEOUT):
                    await web.start()
                uri, answer = await _through(public, web)
                assert (uri.rpartition("/")[2], answer) == ("alpha", b"alpha")

                await api.put("/v1/agent/service/register", registration(b"beta"))
                async with asyncio.timeout(TIMEOUT):
                    for _ in range(1000):
                        if sidecar.status()["Service"] == "beta":
                            break
                        await asyncio.sleep(0.01)
                uri, answer = await _through(public, web)
                assert (uri.rpartition("/")[2], answer) == ("beta", b"beta")
                assert sidecar.refused == 0
            finally:
                await sidecar.close()
                await web.close()
    for server in services.values():
        server.close()
        await server.wait_closed()
