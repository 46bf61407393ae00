"""H2PING checks: open an HTTP/2 connection and wait for the answer to a PING frame.

This proves the HTTP/2 stack itself answers (gRPC servers without a health service,
HTTP/2 proxies), not just that the port is open. TLS with ALPN "h2" is the default
(H2PingUseTLS); without it the connection starts with the cleartext prior-knowledge
preface, as Go's ``AllowHTTP`` transport does. The h2 library supplies the framing;
the socket is a plain asyncio stream.
"""

from __future__ import annotations

import asyncio
import contextlib

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from waypost.checks._net import dial_error, split_host_port, tls_context
from waypost.checks.base import CheckResult
from waypost.checks.definition import CheckDefinition
from waypost.state.model import CheckStatus

__all__ = ["H2PingCheck"]

_PING_DATA = b"waypost!"
_READ_SIZE = 64 * 1024
_SUCCESS = "HTTP2 ping was successful"


class H2PingCheck:
    """One connection per probe, closed with a GOAWAY so servers log a clean goodbye."""

    default_timeout = 10.0

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        target = definition.h2ping
        context = tls_context(definition.tls_skip_verify, ("h2",)) if definition.h2ping_use_tls else None
        try:
            host, port = split_host_port(target)
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=context,
                server_hostname=(definition.tls_server_name or host) if context else None,
            )
        except (OSError, ValueError) as exc:
            return CheckResult(
                CheckStatus.CRITICAL, f"Failed to dial to {target}: {dial_error('tcp', target, exc)}"
            )
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        try:
            connection.initiate_connection()
            connection.ping(_PING_DATA)
            writer.write(connection.data_to_send())
            failure = await _await_ack(connection, reader, writer)
        except (OSError, h2.exceptions.ProtocolError) as exc:
            failure = str(exc) or type(exc).__name__
        finally:
            with contextlib.suppress(OSError, h2.exceptions.ProtocolError):
                connection.close_connection()
                writer.write(connection.data_to_send())
            writer.close()
        if failure:
            return CheckResult(CheckStatus.CRITICAL, f"HTTP2 ping failed: {failure}")
        return CheckResult(CheckStatus.PASSING, _SUCCESS)

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        return CheckResult(CheckStatus.CRITICAL, "HTTP2 ping failed: context deadline exceeded")

    async def close(self) -> None:
        """Nothing pooled: every probe dials its own connection."""


async def _await_ack(
    connection: h2.connection.H2Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> str:
    """ "" once our PING is acknowledged, else why the connection ended first."""
    while data := await reader.read(_READ_SIZE):
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.PingAckReceived) and event.ping_data == _PING_DATA:
                return ""
            if isinstance(event, h2.events.ConnectionTerminated):
                return f"server sent GOAWAY (error code {event.error_code})"
        writer.write(connection.data_to_send())
        await writer.drain()
    return "EOF"
