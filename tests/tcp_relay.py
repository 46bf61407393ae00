"""A TCP relay on 127.0.0.1 that loses traffic on purpose, between a client under test and
a real server (an etcd member, an agent's agent-to-server port): so that a call reaches
the server and commits while its answer never arrives, or never reaches it at all.

It runs its own event loop in a thread, so that it keeps relaying while a test blocks
on a synchronous request to an agent process, and can be driven from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

__all__ = ["Relay"]

_TAIL = 256
"""Bytes of a connection's previous request data kept so that a marker split across
two reads is still found; markers are shorter."""


class Relay:
    """``with Relay("127.0.0.1:2379") as relay:`` connect to ``relay.address``.

    ``swallow_requests`` / ``swallow_replies`` drop everything flowing that way while
    set; ``cut()`` drops every connection at once; ``interrupt(marker)`` loses the answer
    to (or with ``arrive=False`` the whole of) the next request holding ``marker``.
    """

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self.swallow_requests = False
        self.swallow_replies = False
        self.interrupted = threading.Event()
        """Set once an ``interrupt`` has struck."""
        self._armed: tuple[bytes, bool] | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay", daemon=True)
        self._server: asyncio.Server | None = None
        self.address = ""

    def start(self) -> Relay:
        self._thread.start()
        listening = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._server = listening.result(10)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._relay, "127.0.0.1", 0)

    def interrupt(self, marker: bytes, *, arrive: bool = True) -> None:
        """Arm a one-shot loss: the first request whose bytes hold ``marker`` is relayed
        whole but its connection is dropped as the answer starts to come back (it applied,
        its answer is lost), or with ``arrive=False`` the connection is dropped before the
        bytes holding ``marker`` are relayed (it never arrived whole)."""
        assert len(marker) <= _TAIL
        self.interrupted.clear()
        self._armed = (marker, arrive)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            await self._pump(reader, writer)
        finally:
            self._handlers.discard(handler)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        pair = {writer, up_writer}
        self._writers |= pair
        doomed = asyncio.Event()

        async def requests() -> None:
            tail = b""
            while data := await reader.read(65536):
                armed, seen = self._armed, tail + data
                tail = seen[-_TAIL:]
                if armed is not None and armed[0] in seen:
                    self._armed = None
                    self.interrupted.set()
                    if not armed[1]:
                        return
                    doomed.set()
                if not self.swallow_requests:
                    up_writer.write(data)
                    await up_writer.drain()

        async def replies() -> None:
            while data := await up_reader.read(65536):
                if doomed.is_set():
                    return
                if not self.swallow_replies:
                    writer.write(data)
                    await writer.drain()

        pumps = [asyncio.ensure_future(requests()), asyncio.ensure_future(replies())]
        with contextlib.suppress(OSError):
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for w in pair:
            w.close()
        self._writers -= pair

    def cut(self) -> None:
        """Drop every relayed connection: the client sees its call fail at once."""
        self._loop.call_soon_threadsafe(self._cut)

    def _cut(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _shut(self) -> None:
        self._cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=10)

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
