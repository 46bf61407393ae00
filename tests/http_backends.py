"""Tiny real HTTP servers that answer with their name, and a one-request client, for the
proxy's tests: in this process (``Backend``) or as a process of its own (``BackendProcess``,
so a test can kill one with SIGKILL). Run as a script: ``http_backends.py PORT NAME``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from waypost.testing import AgentProcess

__all__ = ["MAX_REQUESTS", "Backend", "BackendProcess", "Load", "agent_index", "fetch", "get", "wait_applied"]


def _answer(name: str) -> bytes:
    body = name.encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)


async def _respond(name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_answer(name))
        await writer.drain()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


class Backend:
    """``async with Backend("a") as b:`` serves on 127.0.0.1:``b.port`` in the running loop."""

    def __init__(self, name: str, port: int = 0) -> None:
        self.name = name
        self.port = port
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Backend:
        self._server = await asyncio.start_server(
            lambda r, w: _respond(self.name, r, w), "127.0.0.1", self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


async def fetch(port: int, host: str = "127.0.0.1") -> str:
    """One GET on a new connection, within 5s; the body (the backend's name). Raises on any failure."""
    async with asyncio.timeout(5.0):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            data = await reader.read(-1)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"bad answer: {data[:80]!r}")
    return body.decode()


async def get(port: int, host: str, path: str) -> tuple[int, str]:
    """One GET of ``path`` with ``Host: host`` on a new connection, within 5s: status and body."""
    async with asyncio.timeout(5.0):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = await reader.read(-1)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


class BackendProcess:
    """A backend in a process of its own; ``kill()`` is SIGKILL."""

    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BackendProcess:
        self.proc = subprocess.Popen([sys.executable, __file__, str(self.port), self.name])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            time.sleep(0.05)
        raise TimeoutError(f"backend {self.name} did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.kill()


async def _main(port: int, name: str) -> None:
    server = await asyncio.start_server(lambda r, w: _respond(name, r, w), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), sys.argv[2]))


def agent_index(agent: AgentProcess, service: str) -> int:
    """The agent's current index for ``/v1/health/service/<service>``."""
    _, headers, _ = agent.request("GET", f"/v1/health/service/{service}")
    return int(headers["X-Consul-Index"])


async def wait_applied(applied: Callable[[], int], agent: AgentProcess, service: str) -> None:
    """Until the proxy applies the agent's present index for ``service`` (at most 10s)."""
    want = agent_index(agent, service)
    for _ in range(500):
        if applied() >= want:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the proxy never applied index {want} of {service!r}: at {applied()}")


MAX_REQUESTS = 200_000
"""A load generator's bound: it stops there even if nobody stops it."""


@dataclass
class Load:
    """Workers fetching through a proxy on ``port`` until stopped, counting answers by
    backend name and every failed request; never more than MAX_REQUESTS in all."""

    port: int
    ok: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stop: bool = False

    async def worker(self) -> None:
        while not self.stop and self.ok.total() + len(self.errors) < MAX_REQUESTS:
            try:
                self.ok[await fetch(self.port)] += 1
            except (OSError, TimeoutError) as exc:
                self.errors.append(repr(exc))
