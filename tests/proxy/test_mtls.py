"""Connect's TLS material from a real agent, on the built-in proxy's listeners: mTLS both ways,
SPIFFE identities checked, and a root rotation under an open connection."""

from __future__ import annotations

import asyncio
import ssl

from echo_server import Echo, closed
from waypost.client import ApiClient
from waypost.proxy.config import ListenerConfig, OutlierConfig
from waypost.proxy.mtls import Certificates, peer_uri
from waypost.proxy.outlier import OutlierDetector
from waypost.proxy.pool import Pool
from waypost.proxy.tcp import TcpListener, Tls
from waypost.proxy.upstreams import Selector, Upstream, UpstreamUpdate
from waypost.testing import AgentProcess

TIMEOUT = 10.0


def _pool(service: str, target: Upstream) -> Pool:
    pool = Pool(ListenerConfig(service, "127.0.0.1", 0), OutlierDetector(OutlierConfig()))
    pool.update(UpstreamUpdate(Selector(service), 1, (target,)))
    return pool


async def _cut(reader: asyncio.StreamReader) -> bool:
    """Whether the connection ends without a byte: closed, reset or a failed handshake."""
    try:
        return await asyncio.wait_for(reader.read(1), TIMEOUT) == b""
    except (ssl.SSLError, ConnectionError):
        return True


async def _roundtrip(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(data)), TIMEOUT)
    finally:
        await closed(writer)


class Mesh:
    """An echo app behind an inbound mTLS listener for ``db``, and a plain upstream listener
    that reaches it over mTLS as ``web``."""

    def __init__(self, api: ApiClient, admitted: list[str]) -> None:
        self.db = Certificates(api, "db", wait="5s")
        self.web = Certificates(api, "web", wait="5s")
        self.admitted = admitted
        self.served: list[str] = []
        self.planes: list[TcpListener] = []

    async def start(self, expect: str = "/svc/db") -> int:
        async with asyncio.timeout(TIMEOUT):
            await asyncio.gather(self.db.start(), self.web.start())
        self.app = Echo()
        app_port = await self.app.start()

        async def admit(transport: asyncio.Transport) -> bool:
            uri, _ = peer_uri(transport)
            self.admitted.append(uri)
            return uri.endswith("/svc/web")

        def verify(transport: asyncio.Transport) -> bool:
            uri, serial = peer_uri(transport)
            self.served.append(serial)
            return uri.endswith(expect)

        inbound = TcpListener(
            _pool("db", Upstream("127.0.0.1", app_port, 1, "", "db")), Tls(server=self.db.server, admit=admit)
        )
        await inbound.start()
        self.inbound = inbound
        upstream = Upstream("127.0.0.1", inbound.port, 1, "node", "db-sidecar-proxy")
        outbound = TcpListener(_pool("db", upstream), Tls(client=self.web.client, verify_upstream=verify))
        await outbound.start()
        self.planes = [inbound, outbound]
        return outbound.port

    async def close(self) -> None:
        for plane in self.planes:
            await plane.close()
        await self.app.close()
        await self.db.close()
        await self.web.close()


async def test_traffic_flows_over_mtls_with_spiffe_identities(api: ApiClient) -> None:
    admitted: list[str] = []
    mesh = Mesh(api, admitted)
    port = await mesh.start()
    try:
        assert await _roundtrip(port, b"hello through the mesh") == b"hello through the mesh"
        assert len(admitted) == 1
        assert admitted[0].startswith("spiffe://")
        assert admitted[0].endswith("/ns/default/dc/dc1/svc/web")
    finally:
        await mesh.close()


async def test_an_upstream_with_another_identity_is_refused(api: ApiClient) -> None:
    mesh = Mesh(api, [])
    port = await mesh.start(expect="/svc/payments")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x")
        assert await _cut(reader)
        await closed(writer)
    finally:
        await mesh.close()


async def test_a_client_without_a_certificate_is_refused_at_the_handshake(api: ApiClient) -> None:
    admitted: list[str] = []
    mesh = Mesh(api, admitted)
    await mesh.start()
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", mesh.inbound.port, ssl=ctx)
        except (ssl.SSLError, ConnectionError):
            pass  # refused during the handshake
        else:
            writer.write(b"x")
            assert await _cut(reader)  # TLS 1.3: the server's refusal arrives after the client's finish
            await closed(writer)
        assert admitted == []
    finally:
        await mesh.close()


async def test_connections_survive_a_root_rotation_and_new_ones_use_the_new_leaf(
    api: ApiClient, agent: AgentProcess
) -> None:
    mesh = Mesh(api, [])
    port = await mesh.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"before")
        assert await asyncio.wait_for(reader.readexactly(6), TIMEOUT) == b"before"
        changes = (mesh.db.changes, mesh.web.changes)
        await api.put(
            "/v1/connect/ca/configuration", {"Provider": "consul", "Config": {"LeafCertTTL": "36h"}}
        )
        # Roots and leaf each rebuild the contexts: wait until both sides saw their new leaf.
        async with asyncio.timeout(TIMEOUT):
            await mesh.db.rebuilt(changes[0] + 2)
            await mesh.web.rebuilt(changes[1] + 2)
        writer.write(b"during")
        assert await asyncio.wait_for(reader.readexactly(6), TIMEOUT) == b"during"
        await closed(writer)
        assert await _roundtrip(port, b"after") == b"after"
        assert len(mesh.served) == 2
        assert mesh.served[0] != mesh.served[1]  # the second handshake presented the new leaf
    finally:
        await mesh.close()
