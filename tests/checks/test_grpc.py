from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from checks_kit import Harness
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from waypost.checks.definition import parse_check_definition
from waypost.checks.grpc import GrpcCheck

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServer:
    """A real grpcio server running the reference health service."""

    def __init__(self, credentials: grpc.ServerCredentials | None = None) -> None:
        self.credentials = credentials
        self.servicer = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        address = f"127.0.0.1:{self.port}"
        if self.credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, self.credentials)
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None


@pytest.fixture
async def health_server() -> AsyncIterator[HealthServer]:
    server = HealthServer()
    await server.start()
    yield server
    await server.stop()


async def test_serving_not_serving_down_and_back(harness: Harness, health_server: HealthServer) -> None:
    await health_server.servicer.set("payments", SERVING)
    target = f"127.0.0.1:{health_server.port}/payments"
    check = harness.add({"GRPC": target, "Interval": "1s"})
    assert await harness.recorder.wait_for(check, "passing") == f"gRPC check {target}: success"

    await health_server.servicer.set("payments", NOT_SERVING)
    assert await harness.recorder.wait_for(check, "critical") == f"gRPC {target} serving status: NOT_SERVING"

    await health_server.stop()
    output = await harness.recorder.wait_for(check, "critical", contains="rpc error")
    assert output.startswith("rpc error: code = Unavailable desc = ")

    health_server.servicer = health.aio.HealthServicer()
    await health_server.servicer.set("payments", SERVING)
    await health_server.start()
    await harness.recorder.wait_for(check, "passing")


async def test_whole_server_and_unknown_service(health_server: HealthServer) -> None:
    probe = GrpcCheck().probe
    whole = await probe(parse_check_definition({"GRPC": f"127.0.0.1:{health_server.port}", "Interval": "1s"}))
    assert whole.status == "passing"
    target = f"127.0.0.1:{health_server.port}/nope"
    unknown = await probe(parse_check_definition({"GRPC": target, "Interval": "1s"}))
    assert unknown.status == "critical"
    assert unknown.output.startswith("rpc error: code = NotFound desc = ")


async def test_tls(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server = HealthServer(grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())]))
    await server.start()
    try:
        body = {"GRPC": f"127.0.0.1:{server.port}", "GRPCUseTLS": True, "Interval": "1s"}
        probe = GrpcCheck().probe
        skipped = await probe(parse_check_definition({**body, "TLSSkipVerify": True}))
        assert (skipped.status, skipped.output) == ("passing", f"gRPC check 127.0.0.1:{server.port}: success")
        verified = await probe(parse_check_definition(body))
        assert verified.status == "critical"
        assert verified.output.startswith("rpc error: code = Unavailable")
    finally:
        await server.stop()
