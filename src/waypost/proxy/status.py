"""The proxy's status endpoint: ``GET /v1/proxy/status`` answers what the proxy applies.

Each listener reports the index of the upstream answer in force, so a caller that just
changed the catalog can wait until the proxy has seen that index (rather than sleeping),
and the instances with their open connections and ejections. A deliberately tiny
HTTP/1.1 responder: one JSON document, ``Connection: close``, nothing to configure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["STATUS_PATH", "StatusServer"]

log = logging.getLogger("waypost.proxy")

STATUS_PATH = "/v1/proxy/status"
MAX_HEAD = 8192
READ_TIMEOUT = 5.0


class StatusServer:
    def __init__(self, host: str, port: int, report: Callable[[], Any]) -> None:
        self.host, self.port = host, port
        self.report = report
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            method, _, rest = head.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0].decode("latin-1")
            if method != b"GET":
                status, body = "405 Method Not Allowed", b"method not allowed\n"
            elif path != STATUS_PATH:
                status, body = "404 Not Found", b"not found\n"
            else:
                status, body = "200 OK", orjson.dumps(self.report(), option=orjson.OPT_INDENT_2)
            kind = "application/json" if status.startswith("200") else "text/plain"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
