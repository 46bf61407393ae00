"""gRPC checks: the standard ``grpc.health.v1.Health/Check`` call, SERVING is passing.

The target is ``host:port`` or ``host:port/service``; without a service the server's
overall health is asked. Each run dials a fresh channel, as Consul does: a reused
channel sitting in reconnect back-off would keep reporting a restarted server as down.
"""

from __future__ import annotations

import asyncio
import ssl

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2

from waypost.checks._net import describe_error, split_host_port, tls_context
from waypost.checks.base import CheckResult
from waypost.checks.definition import CheckDefinition
from waypost.state.model import CheckStatus

__all__ = ["GrpcCheck"]

_CHECK_METHOD = "/grpc.health.v1.Health/Check"


class GrpcCheck:
    """Speaks through grpcio's asyncio API; TLS per GRPCUseTLS, TLSSkipVerify, TLSServerName."""

    default_timeout = 10.0

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        target = definition.grpc
        server, _, service = target.partition("/")
        options: list[tuple[str, str]] = []
        if definition.tls_server_name:
            options.append(("grpc.ssl_target_name_override", definition.tls_server_name))
        try:
            if definition.grpc_use_tls:
                credentials = await _credentials(server, definition)
                channel = grpc.aio.secure_channel(server, credentials, options=options)
            else:
                channel = grpc.aio.insecure_channel(server)
        except (OSError, ValueError) as exc:
            return CheckResult(CheckStatus.CRITICAL, f"connection error: desc = {describe_error(exc)}")
        async with channel:
            check = channel.unary_unary(
                _CHECK_METHOD,
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            try:
                response = await check(health_pb2.HealthCheckRequest(service=service))
            except grpc.aio.AioRpcError as exc:
                return CheckResult(CheckStatus.CRITICAL, _rpc_error(exc.code(), exc.details() or ""))
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            return CheckResult(CheckStatus.CRITICAL, f"gRPC {target} serving status: {name}")
        return CheckResult(CheckStatus.PASSING, f"gRPC check {target}: success")

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        return CheckResult(
            CheckStatus.CRITICAL, _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "context deadline exceeded")
        )

    async def close(self) -> None:
        """Nothing pooled: channels live for one probe."""


async def _credentials(server: str, definition: CheckDefinition) -> grpc.ChannelCredentials:
    """TLS credentials; with TLSSkipVerify the server's own certificate becomes the trust root.

    grpcio cannot switch verification off, so the presented certificate is fetched
    first and trusted as is: enough for the self-signed certificates skip-verify is
    used with. Hostname matching still applies (set TLSServerName to steer it).
    """
    if not definition.tls_skip_verify:
        return grpc.ssl_channel_credentials()
    host, port = split_host_port(server)
    _, writer = await asyncio.open_connection(
        host, port, ssl=tls_context(True, ("h2",)), server_hostname=definition.tls_server_name or host
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.close()
    if not der:
        raise ValueError(f"{server} presented no certificate")
    return grpc.ssl_channel_credentials(root_certificates=ssl.DER_cert_to_PEM_cert(der).encode())


def _rpc_error(code: grpc.StatusCode, details: str) -> str:
    """Go's ``status.Error`` text: "rpc error: code = Unavailable desc = ..."."""
    name = "".join(part.capitalize() for part in code.name.split("_"))
    return f"rpc error: code = {name} desc = {details}"
