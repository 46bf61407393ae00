from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest
from checks_kit import Harness

from waypost.checks.definition import parse_check_definition
from waypost.checks.tcp import TcpCheck


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def listen(port: int, context: ssl.SSLContext | None = None) -> asyncio.Server:
    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(accept, "127.0.0.1", port, ssl=context, reuse_address=True)


@pytest.fixture
def port() -> int:
    return free_port()


async def test_follows_the_listener_up_down_up(harness: Harness, port: int) -> None:
    server = await listen(port)
    check = harness.add({"TCP": f"127.0.0.1:{port}", "Interval": "1s"})
    assert await harness.recorder.wait_for(check, "passing") == f"TCP connect 127.0.0.1:{port}: Success"

    server.close()
    await server.wait_closed()
    output = await harness.recorder.wait_for(check, "critical")
    assert output == f"dial tcp 127.0.0.1:{port}: connect: connection refused"

    server = await listen(port)
    await harness.recorder.wait_for(check, "passing")
    server.close()
    await server.wait_closed()


async def test_tls_handshake(tls_files: tuple[Path, Path], port: int) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await listen(port, context)
    try:
        probe = TcpCheck().probe
        body = {"TCP": f"127.0.0.1:{port}", "TCPUseTLS": True, "Interval": "1s"}
        trusted = await probe(parse_check_definition({**body, "TLSSkipVerify": True}))
        assert (trusted.status, trusted.output) == ("passing", f"TCP+TLS connect 127.0.0.1:{port}: Success")
        untrusted = await probe(parse_check_definition(body))
        assert untrusted.status == "critical"
        assert "tls: failed to verify certificate" in untrusted.output
    finally:
        server.close()
        await server.wait_closed()


async def test_bad_address_is_critical() -> None:
    result = await TcpCheck().probe(parse_check_definition({"TCP": "127.0.0.1", "Interval": "1s"}))
    assert (result.status, result.output) == (
        "critical",
        "dial tcp address 127.0.0.1: missing port in address",
    )
