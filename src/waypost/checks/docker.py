"""Docker checks: run the check command inside a container through the Engine API.

Three calls, as Consul makes them: create an exec, start it attached (its output is
the check's output), then inspect it for the exit code, read with the same Nagios
mapping as script checks. The API is reached over ``$DOCKER_HOST`` (``unix://`` or
``tcp://``), by default the local socket; any Engine-compatible daemon (Docker,
podman's service) works. Consul has no timeout for these; the scheduler applies the
script default so a wedged daemon cannot hold a check forever.
"""

from __future__ import annotations

import struct
from typing import Any
from urllib.parse import quote

import aiohttp

from waypost.checks.base import DEFAULT_OUTPUT_MAX_SIZE, CheckResult, TailBuffer, timed_out
from waypost.checks.definition import CheckDefinition
from waypost.checks.script import exit_status
from waypost.docker_host import EngineEndpoint
from waypost.state.model import CheckStatus

__all__ = ["DockerCheck", "DockerError"]

_FRAME = struct.Struct(">BxxxI")


class DockerError(Exception):
    """An Engine API call failed; the message is the check's Output."""


class DockerCheck:
    """One session to the daemon shared by every docker check."""

    default_timeout = 30.0

    def __init__(self, host: str | None = None) -> None:
        self.host = host
        self._session: aiohttp.ClientSession | None = None
        self._base = ""

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            try:
                endpoint = EngineEndpoint(self.host)
            except ValueError as exc:
                raise DockerError(str(exc)) from None
            self._session, self._base = endpoint.session(), endpoint.base
        return self._session

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        container = definition.docker_container_id
        output = TailBuffer(definition.output_max_size or DEFAULT_OUTPUT_MAX_SIZE)
        try:
            exec_id = await self._create_exec(container, list(definition.command))
            await self._start_exec(container, exec_id, output)
            code = await self._exit_code(container, exec_id)
        except (DockerError, aiohttp.ClientError, OSError) as exc:
            return CheckResult(CheckStatus.CRITICAL, str(exc))
        return CheckResult(exit_status(code), output.report())

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        session = self._client()
        async with session.request(method, self._base + path, json=body) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def _create_exec(self, container: str, command: list[str]) -> str:
        body = {
            "AttachStdin": False,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": False,
            "Cmd": command,
        }
        code, reply = await self._call("POST", f"/containers/{quote(container, safe='')}/exec", body)
        exec_id = reply.get("Id") if isinstance(reply, dict) else None
        if code == 201 and isinstance(exec_id, str):
            return exec_id
        if code == 404:
            raise DockerError(f"create exec failed for unknown container {container}")
        if code == 409:
            raise DockerError(f"create exec failed since container {container} is paused or stopped")
        raise DockerError(f"create exec failed for container {container} with status {code}: {reply}")

    async def _start_exec(self, container: str, exec_id: str, output: TailBuffer) -> None:
        session = self._client()
        url = f"{self._base}/exec/{exec_id}/start"
        async with session.post(url, json={"Detach": False, "Tty": False}) as response:
            if response.status == 404:
                raise DockerError(f"start exec failed for container {container}: invalid exec id {exec_id}")
            if response.status == 409:
                raise DockerError(f"start exec failed since container {container} is paused or stopped")
            if response.status != 200:
                text = await response.text()
                raise DockerError(
                    f"start exec failed for container {container} with status {response.status}: {text}"
                )
            demux = _Demultiplexer(output)
            async for chunk in response.content.iter_any():
                demux.feed(chunk)
            demux.flush()

    async def _exit_code(self, container: str, exec_id: str) -> int:
        code, reply = await self._call("GET", f"/exec/{exec_id}/json")
        exit_code = reply.get("ExitCode") if isinstance(reply, dict) else None
        if code == 200 and isinstance(exit_code, int):
            return exit_code
        if code == 404:
            raise DockerError(f"inspect exec failed for container {container}: invalid exec id {exec_id}")
        raise DockerError(f"inspect exec failed for container {container} with status {code}: {reply}")

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        return timed_out(timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Demultiplexer:
    """Strips the Engine's 8-byte stream headers (stdout/stderr framing) from exec output.

    Daemons disagree on when they frame (podman frames even under a raw-stream content
    type), so the first bytes decide: a valid header means framed, anything else raw.
    """

    __slots__ = ("_framed", "_output", "_pending")

    def __init__(self, output: TailBuffer) -> None:
        self._output = output
        self._pending = bytearray()
        self._framed: bool | None = None

    def feed(self, chunk: bytes) -> None:
        if self._framed is False:
            self._output.write(chunk)
            return
        self._pending += chunk
        if self._framed is None:
            if len(self._pending) < _FRAME.size:
                return
            self._framed = self._pending[0] in (0, 1, 2) and self._pending[1:4] == b"\0\0\0"
            if not self._framed:
                self._output.write(bytes(self._pending))
                self._pending.clear()
                return
        while len(self._pending) >= _FRAME.size:
            _, size = _FRAME.unpack_from(self._pending)
            if len(self._pending) < _FRAME.size + size:
                return
            self._output.write(bytes(self._pending[_FRAME.size : _FRAME.size + size]))
            del self._pending[: _FRAME.size + size]

    def flush(self) -> None:
        """Output too short to carry a header was never framed: keep it as is."""
        if self._framed is None:
            self._output.write(bytes(self._pending))
