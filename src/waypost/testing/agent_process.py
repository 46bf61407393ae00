"""Run a real ``waypost agent`` in a subprocess on 127.0.0.1 and wait until it serves."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["AgentProcess", "free_port"]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free for both TCP and UDP right now (DNS binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
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
        self.http_port = http_port or free_port()
        self.tls = tls
        self.https_port = free_port() if tls is not None else 0
        self.dns_port = dns_port or free_port()
        self.server_port = server_port or free_port()
        self.args = [
            *args,
            *("-http-port", str(self.http_port), "-dns-port", str(self.dns_port)),
            *("-server-port", str(self.server_port)),
            *(("-https-port", str(self.https_port)) if tls is not None else ()),
        ]
        self.wait_for_leader = wait_for_leader
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

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
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
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
                self._close_log()
                raise RuntimeError(f"agent exited with {self.proc.returncode} during start-up")
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                if self.get("/v1/status/leader" if self.wait_for_leader else "/v1/agent/self"):
                    return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError("agent did not start serving in time")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method)
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
        if self._log not in (None, subprocess.DEVNULL):
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
