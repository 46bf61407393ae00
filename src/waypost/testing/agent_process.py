"""Run a real ``waypost agent`` in a subprocess on 127.0.0.1 and wait until it serves."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["AgentProcess", "free_port"]


def _ephemeral_floor() -> int:
    """Where the kernel starts handing out ports to outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free for both TCP and UDP right now (DNS binds both). Taken below
    the ephemeral range: a port the kernel handed out for a listener probe can be handed
    out again to any outgoing connection before the agent binds it, one below the range
    only to another test's listener. ``kind`` is kept for callers that name it."""
    floor = _ephemeral_floor()
    if floor > 12000:
        for _ in range(100):
            port = random.randrange(10000, floor)
            if _bindable(port):
                return port
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if _bindable(port):
            return port
    raise RuntimeError("no free port found")


class AgentProcess:
    """``with AgentProcess(["-dev"]) as agent: agent.get("/v1/agent/self")``.

    Every listener gets a free port unless given one, the agent-to-server port (which only
    servers open) included, so that agents started side by side never collide. Start-up
    waits until a leader is known, or with ``wait_for_leader=False`` only until the agent
    serves its own endpoints: a client agent started before any server has no leader.
    """

    def __init__(
        self,
        args: Sequence[str] = ("-dev",),
        *,
        http_port: int | None = None,
        dns_port: int | None = None,
        server_port: int | None = None,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        wait_for_leader: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """With ``tls`` (the client side: CA, client certificate) the agent also gets a free
        HTTPS port, and start-up and ``request`` go over HTTPS, so that tests can turn the
        HTTP port off."""
        self.tls = tls
        self._given = (http_port, dns_port, server_port)
        self._extra_args = list(args)
        self._choose_ports()
        self.wait_for_leader = wait_for_leader
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def _choose_ports(self) -> None:
        http_port, dns_port, server_port = self._given
        self.http_port = http_port or free_port()
        self.https_port = free_port() if self.tls is not None else 0
        self.dns_port = dns_port or free_port()
        self.server_port = server_port or free_port()
        self.args = [
            *self._extra_args,
            *("-http-port", str(self.http_port), "-dns-port", str(self.dns_port)),
            *("-server-port", str(self.server_port)),
            *(("-https-port", str(self.https_port)) if self.tls is not None else ()),
        ]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"https://127.0.0.1:{self.https_port}"
        return f"http://{self.address}"

    @property
    def server_address(self) -> str:
        """Where a server agent takes joins: its agent-to-server listener."""
        return f"127.0.0.1:{self.server_port}"

    def start(self, timeout: float = 20.0) -> AgentProcess:
        """Ports this class chose that were taken between choosing and binding (by another
        test's listener) are chosen again, a few times, rather than failing the test."""
        for _ in range(3):
            if self._launch(timeout):
                return self
            self._choose_ports()
        raise RuntimeError("agent exited during start-up: its ports kept being taken")

    def _launch(self, timeout: float) -> bool:
        """True once serving; False when the agent lost a port this class chose."""
        self._log = open(self.log_path, "a+b") if self.log_path else tempfile.TemporaryFile()  # noqa: SIM115
        offset = self._log.tell()
        env = {**os.environ, **(self.env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "waypost", "agent", *self.args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                lost_port = self._lost_chosen_port(offset)
                self._close_log()
                if lost_port:
                    return False
                raise RuntimeError(f"agent exited with {self.proc.returncode} during start-up")
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                if self.get("/v1/status/leader" if self.wait_for_leader else "/v1/agent/self"):
                    return True
            time.sleep(0.05)
        self.stop()
        raise TimeoutError("agent did not start serving in time")

    def _lost_chosen_port(self, offset: int) -> bool:
        self._log.flush()
        self._log.seek(offset)
        output = self._log.read().decode(errors="replace").lower()
        named = [port for port in self._given if port]
        return "address already in use" in output and not any(re.search(rf"\b{p}\b", output) for p in named)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.tls) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def get(self, path: str) -> Any:
        status, _, body = self.request("GET", path)
        if status != 200:
            raise urllib.error.URLError(f"GET {path}: {status} {body!r}")
        return json.loads(body) if body else None

    def put(self, path: str, data: Any = None) -> Any:
        raw = data if isinstance(data, bytes) else (json.dumps(data).encode() if data is not None else b"")
        status, _, body = self.request("PUT", path, raw)
        if status != 200:
            raise urllib.error.URLError(f"PUT {path}: {status} {body!r}")
        return json.loads(body) if body else None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
        self._log = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
