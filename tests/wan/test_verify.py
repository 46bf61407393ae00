"""verify_server_hostname against a real HTTPS server on loopback with certificates of
``waypost tls``: the datacenter read off a server certificate, a client certificate or
plain HTTP refused, and a forward that asks another server's name refused like an
unreachable server."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tls_certs import Certs, make_certs
from waypost.api.http import HttpServer, Request, Response
from waypost.wan.forward import SERVER_HOP, Forwarder
from waypost.wan.verify import certificate_datacenter, server_name


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(Path(tmp_path_factory.mktemp("verify")) / "certs")


def _client(certs: Certs, *, check_hostname: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    ctx.check_hostname = check_hostname
    return ctx


async def _serve(certs: Certs, kind: str) -> tuple[HttpServer, str]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certs.pair(kind))
    server = HttpServer(lambda req: Response(b"{}"))
    port = await server.listen("127.0.0.1", 0, tls=ctx)
    return server, f"https://127.0.0.1:{port}"


@pytest.fixture
async def server_url(certs: Certs) -> AsyncIterator[str]:
    server, url = await _serve(certs, "server")
    yield url
    await server.close()


def test_the_name_asked_of_a_server() -> None:
    assert server_name("DC2", "Consul.") == "server.dc2.consul"


async def test_the_datacenter_is_read_off_a_server_certificate_only(certs: Certs, server_url: str) -> None:
    ctx = _client(certs, check_hostname=False)
    assert await certificate_datacenter(server_url, ctx, "consul") == "dc1"
    with pytest.raises(ValueError, match="not a server's"):
        await certificate_datacenter(server_url, ctx, "example")
    with pytest.raises(ValueError, match="not HTTPS"):
        await certificate_datacenter(server_url.replace("https", "http"), ctx, "consul")
    client, url = await _serve(certs, "client")
    try:
        with pytest.raises(ValueError, match=r"client\.dc1\.consul"):
            await certificate_datacenter(url, ctx, "consul")
    finally:
        await client.close()


async def test_a_forward_asking_another_servers_name_finds_no_path(certs: Certs, server_url: str) -> None:
    forwarder = Forwarder(_client(certs, check_hostname=True))
    try:
        req = Request("GET", "/v1/kv/x", "", {}, b"")
        assert (await forwarder.relay([server_url], req, SERVER_HOP, "server.dc1.consul")).status == 200
        refused = await forwarder.relay([server_url], req, SERVER_HOP, "server.dc2.consul")
        assert (refused.status, refused.body) == (500, b"No path to datacenter")
    finally:
        await forwarder.close()
