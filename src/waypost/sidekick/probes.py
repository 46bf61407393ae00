"""The sidekick's own view of its child: does the port accept, does the endpoint answer.

The sidekick probes from the child's host rather than registering an HTTP or TCP check
with the agent, so the child's port need not be reachable from the agent, and a sidekick
that dies takes its heartbeats with it: the TTL then lapses and the service turns critical.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

import aiohttp

__all__ = ["PASSING", "Probe", "accepts", "probe_http", "probe_tcp"]

PASSING, WARNING, CRITICAL = "passing", "warning", "critical"
_BODY_LIMIT = 4096
"""Consul keeps this much of an HTTP check's body in its output."""

Probe = tuple[str, str]
"""A check status and the output that explains it."""


async def accepts(port: int, within: float) -> bool:
    """Whether 127.0.0.1:``port`` takes a TCP connection in ``within`` seconds."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), within)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def probe_tcp(port: int, within: float) -> Probe:
    address = f"127.0.0.1:{port}"
    if await accepts(port, within):
        return PASSING, f"TCP connect {address}: Success"
    return CRITICAL, f"dial tcp {address}: connection refused or timed out"


async def probe_http(session: aiohttp.ClientSession, url: str, within: float) -> Probe:
    """Consul's HTTP check verdict: 2xx passing, 429 warning, anything else critical."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=within)) as resp:
            body = await resp.content.read(_BODY_LIMIT)
            reason = f"{resp.status} {resp.reason or ''}".strip()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return CRITICAL, f'Get "{url}": {_go_error(exc)}'
    output = f"HTTP GET {url}: {reason} Output: {body.decode(errors='replace')}"
    if 200 <= status < 300:
        return PASSING, output
    return (WARNING if status == 429 else CRITICAL), output


def _go_error(exc: BaseException) -> str:
    """The reason in Go's net/http words, which is what Consul's HTTP checks report."""
    if isinstance(exc, TimeoutError):
        return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno
        reason = (os.strerror(errno) if errno else str(exc.os_error)).lower()
        return f"dial tcp {exc.host}:{exc.port}: connect: {reason}"
    return str(exc) or type(exc).__name__
