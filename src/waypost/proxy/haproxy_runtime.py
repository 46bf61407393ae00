"""HAProxy's runtime API (the ``stats socket ... level admin``) and its master CLI.

Parsing is sans-I/O (``parse_servers_state``, ``check_reply``); ``RuntimeClient`` and
``MasterClient`` only carry one command per connection over the unix socket, as HAProxy's
non-interactive mode expects: the command, a newline, and the answer up to the close.
The master CLI answers only once the client has closed its side, so it gets a half-close.

HAProxy answers a successful ``set server``/``set weight`` with an empty line and a
refused one with a sentence; ``check_reply`` raises those as ``HaproxyError``, so a
command that did not take effect is never mistaken for one that did.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

__all__ = [
    "HaproxyError",
    "MasterClient",
    "RuntimeClient",
    "ServerState",
    "check_reply",
    "parse_servers_state",
]

# srv_admin_state bits (HAProxy's enum srv_admin).
FMAINT, IMAINT, CMAINT, FDRAIN, IDRAIN, RMAINT = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
SRV_RUNNING = 2

_OK_PREFIXES = ("New server registered.", "Server deleted.", "no need to change the addr",
                "IP changed from", "port changed from")  # fmt: skip


class HaproxyError(Exception):
    """HAProxy refused a command; the message is its answer and the command."""


@dataclass(frozen=True, slots=True)
class ServerState:
    """One row of ``show servers state``: what a slot points at and whether it takes traffic."""

    backend: str
    name: str
    address: str
    port: int
    op_state: int
    admin_state: int
    weight: int

    @property
    def maint(self) -> bool:
        """In maintenance by the runtime API (forced) or by its own configuration."""
        return bool(self.admin_state & (FMAINT | IMAINT | RMAINT))

    @property
    def drain(self) -> bool:
        return bool(self.admin_state & (FDRAIN | IDRAIN))

    @property
    def ready(self) -> bool:
        """Taking new traffic: not in maintenance nor draining."""
        return not self.maint and not self.drain

    @property
    def target(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def parse_servers_state(text: str) -> list[ServerState]:
    """The rows of a ``show servers state`` answer (format version 1), by column name."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    if lines[0].strip() != "1" or len(lines) < 2 or not lines[1].startswith("#"):
        raise HaproxyError(f"show servers state: unexpected answer {text[:120]!r}")
    columns = lines[1].lstrip("# ").split()
    out = []
    for line in lines[2:]:
        row = dict(zip(columns, line.split(), strict=False))
        try:
            out.append(
                ServerState(
                    backend=row["be_name"],
                    name=row["srv_name"],
                    address=row["srv_addr"],
                    port=int(row["srv_port"]),
                    op_state=int(row["srv_op_state"]),
                    admin_state=int(row["srv_admin_state"]),
                    weight=int(row["srv_uweight"]),
                )
            )
        except (KeyError, ValueError):
            raise HaproxyError(f"show servers state: unexpected row {line!r}") from None
    return out


def check_reply(command: str, reply: str) -> str:
    """``reply`` when HAProxy accepted ``command``; otherwise ``HaproxyError`` with its words."""
    text = reply.strip()
    if not text or text.startswith(_OK_PREFIXES):
        return text
    raise HaproxyError(f"haproxy refused {command!r}: {text}")


async def _exchange(path: str, command: str, limit: float, half_close: bool) -> str:
    async with asyncio.timeout(limit):
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(command.encode() + b"\n")
            if half_close:
                writer.write_eof()
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
    return data.decode(errors="replace")


class RuntimeClient:
    """Commands on the admin socket; each raises ``OSError``/``TimeoutError`` if HAProxy is gone."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    async def raw(self, command: str) -> str:
        return await _exchange(self.path, command, self.timeout, half_close=False)

    async def run(self, command: str) -> str:
        """``command``, with a refusal raised as ``HaproxyError``."""
        return check_reply(command, await self.raw(command))

    async def servers(self, backend: str = "") -> list[ServerState]:
        return parse_servers_state(await self.raw(f"show servers state {backend}".strip()))

    async def worker_pid(self) -> int:
        """The pid of the worker answering (``show info``): unchanged while nothing reloads."""
        for line in (await self.raw("show info")).splitlines():
            key, _, value = line.partition(":")
            if key == "Pid":
                return int(value)
        raise HaproxyError("show info: no Pid line")

    async def set_addr(self, backend: str, server: str, address: str, port: int) -> str:
        return await self.run(f"set server {backend}/{server} addr {address} port {port}")

    async def set_state(self, backend: str, server: str, state: str) -> str:
        if state not in ("ready", "drain", "maint"):
            raise ValueError(f"state: must be ready, drain or maint, got {state!r}")
        return await self.run(f"set server {backend}/{server} state {state}")

    async def set_weight(self, backend: str, server: str, weight: int) -> str:
        return await self.run(f"set weight {backend}/{server} {weight}")

    async def add_server(self, backend: str, server: str, target: str, weight: int) -> str:
        """A dynamic server; HAProxy creates it in maintenance."""
        return await self.run(f"add server {backend}/{server} {target} weight {weight}")

    async def del_server(self, backend: str, server: str) -> str:
        """Only a server in maintenance with no connection left can go."""
        return await self.run(f"del server {backend}/{server}")


class MasterClient:
    """The master CLI (``haproxy -W -S <path>``): reloads that keep the listening sockets."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    async def raw(self, command: str) -> str:
        return await _exchange(self.path, command, self.timeout, half_close=True)

    async def reload(self) -> None:
        """Start a new worker on the file as it is now; the old one finishes its connections."""
        await self.raw("reload")

    async def workers(self) -> list[int]:
        """The pids of the current workers (``show proc``), oldest first."""
        pids = []
        section = ""
        for line in (await self.raw("show proc")).splitlines():
            if line.startswith("#"):
                section = line
                continue
            fields = line.split()
            if section.startswith("# workers") and fields and fields[0].isdigit():
                pids.append(int(fields[0]))
        return pids
