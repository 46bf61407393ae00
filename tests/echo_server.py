"""A TCP echo server on 127.0.0.1 for proxy tests, whose ``close`` also ends the connections
it still has open (so no transport outlives its test's event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

__all__ = ["Echo", "closed"]


class Echo:
    """``start`` listens on a free port; ``close`` ends the open connections too."""

    def __init__(self) -> None:
        self.writers: set[asyncio.StreamWriter] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        await closed(writer)
        self.writers.discard(writer)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        self.server.close()
        for writer in list(self.writers):
            await closed(writer)
        await self.server.wait_closed()


async def closed(writer: asyncio.StreamWriter) -> None:
    """Close ``writer`` and wait until it is, whatever state the peer left it in."""
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()
