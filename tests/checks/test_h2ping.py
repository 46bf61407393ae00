from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
from aiohttp import web
from checks_kit import Harness, Servers

from waypost.checks.definition import parse_check_definition
from waypost.checks.h2ping import H2PingCheck


async def h2_server(
    credentials: grpc.ServerCredentials | None = None, port: int = 0
) -> tuple[grpc.aio.Server, int]:
    """A gRPC server is a real HTTP/2 server: it answers PING frames with no service at all."""
    server = grpc.aio.server()
    address = f"127.0.0.1:{port}"
    bound = (
        server.add_insecure_port(address)
        if credentials is None
        else server.add_secure_port(address, credentials)
    )
    await server.start()
    return server, bound


async def test_cleartext_ping_follows_the_server(harness: Harness) -> None:
    server, port = await h2_server()
    target = f"127.0.0.1:{port}"
    check = harness.add({"H2PING": target, "H2PingUseTLS": False, "Interval": "1s"})
    assert await harness.recorder.wait_for(check, "passing") == "HTTP2 ping was successful"

    await server.stop(None)
    output = await harness.recorder.wait_for(check, "critical")
    assert output == f"Failed to dial to {target}: dial tcp {target}: connect: connection refused"

    server, _ = await h2_server(port=port)
    await harness.recorder.wait_for(check, "passing")
    await server.stop(None)


async def test_tls_is_the_default(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server, port = await h2_server(grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())]))
    try:
        probe = H2PingCheck().probe
        body = {"H2PING": f"127.0.0.1:{port}", "Interval": "1s"}
        skipped = await probe(parse_check_definition({**body, "TLSSkipVerify": True}))
        assert (skipped.status, skipped.output) == ("passing", "HTTP2 ping was successful")
        verified = await probe(parse_check_definition(body))
        assert verified.status == "critical"
        assert "failed to verify certificate" in verified.output
    finally:
        await server.stop(None)


async def hello(_: web.Request) -> web.Response:
    return web.Response(text="hi")


async def test_http1_only_server_fails(servers: Servers) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    port = await servers.start(app)
    result = await H2PingCheck().probe(
        parse_check_definition({"H2PING": f"127.0.0.1:{port}", "H2PingUseTLS": False, "Interval": "1s"})
    )
    assert result.status == "critical"
    assert result.output.startswith("HTTP2 ping failed: ")
