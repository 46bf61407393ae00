"""TCP checks: healthy when a connection (and, with TCPUseTLS, a handshake) succeeds.

Nothing is sent: Consul only proves the port accepts, so a target that accepts and
then hangs is still passing.
"""

from __future__ import annotations

import asyncio
import contextlib

from waypost.checks._net import dial_error, split_host_port, tls_context
from waypost.checks.base import CheckResult
from waypost.checks.definition import CheckDefinition
from waypost.state.model import CheckStatus

__all__ = ["TcpCheck"]


class TcpCheck:
    """Connects with a bare protocol object: no stream buffers for what is one SYN."""

    default_timeout = 10.0

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        address = definition.tcp
        try:
            host, port = split_host_port(address)
        except ValueError as exc:
            return CheckResult(CheckStatus.CRITICAL, f"dial tcp {exc}")
        context = tls_context(definition.tls_skip_verify) if definition.tcp_use_tls else None
        try:
            transport, _ = await asyncio.get_running_loop().create_connection(
                asyncio.Protocol,
                host,
                port,
                ssl=context,
                server_hostname=(definition.tls_server_name or host) if context else None,
            )
        except OSError as exc:
            return CheckResult(CheckStatus.CRITICAL, dial_error("tcp", address, exc))
        with contextlib.suppress(OSError):
            transport.close()
        label = "TCP+TLS" if context else "TCP"
        return CheckResult(CheckStatus.PASSING, f"{label} connect {address}: Success")

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        return CheckResult(CheckStatus.CRITICAL, f"dial tcp {definition.tcp}: i/o timeout")

    async def close(self) -> None:
        """Nothing pooled: each probe's connection is closed as soon as it opens."""
