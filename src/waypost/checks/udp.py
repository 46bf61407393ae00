"""UDP checks, with Consul's lenient reading of silence.

An empty datagram goes to the target. A reply, or no reply before the timeout, is
passing: most UDP services ignore junk. Only an ICMP "port unreachable", which Linux
reports on the connected socket as ECONNREFUSED, proves nobody is listening.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from waypost.checks._net import describe_error, dial_error, split_host_port
from waypost.checks.base import CheckResult
from waypost.checks.definition import CheckDefinition
from waypost.state.model import CheckStatus

__all__ = ["UdpCheck"]


class UdpCheck:
    """Waits for a reply until the scheduler's timeout, which :meth:`on_timeout` calls passing."""

    default_timeout = 10.0

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        address = definition.udp
        loop = asyncio.get_running_loop()
        try:
            host, port = split_host_port(address)
            family, _, _, _, peer = (await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM))[0]
        except (ValueError, OSError) as exc:
            return CheckResult(CheckStatus.CRITICAL, dial_error("udp", address, exc))
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            try:
                sock.connect(peer)
            except OSError as exc:
                return CheckResult(CheckStatus.CRITICAL, dial_error("udp", address, exc))
            local = _format(sock.getsockname())
            try:
                sock.send(b"")
                await loop.sock_recv(sock, 1)
            except OSError as exc:
                return CheckResult(
                    CheckStatus.CRITICAL, f"read udp {local}->{_format(peer)}: read: {describe_error(exc)}"
                )
        return _success(address)

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        return _success(definition.udp)

    async def close(self) -> None:
        """Nothing pooled: each probe owns its socket."""


def _success(address: str) -> CheckResult:
    return CheckResult(CheckStatus.PASSING, f"UDP connect {address}: Success")


def _format(sockaddr: tuple[Any, ...]) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
