"""Reading a ``/v1/stream`` response: its bytes, as they arrive, into events.

The one decoder for both readers of the delta streams: the HTTP client of the tools
(``ApiClient.events``) and a client agent's views (``agent.views``), which follow a
server's streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["MAX_EVENT", "EventTooLarge", "SseDecoder", "StreamEvent"]

MAX_EVENT = 64 << 20
"""The largest event buffered (a KV value is at most 512 KiB by default): a server that
never ends an event cannot grow a reader's memory past it."""


class EventTooLarge(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event of a ``/v1/stream`` read: ``upsert``, ``delete``,
    ``end-of-snapshot`` or ``new-snapshot``; ``id`` is set on the last event of each revision.
    ``raw`` is ``data`` as it came, for a reader that keeps the JSON rather than re-encoding it."""

    event: str
    data: Any
    id: int | None = None
    raw: bytes = b""


class SseDecoder:
    """Events from chunks cut anywhere; a chunk may end mid-event."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """The events ``chunk`` completes; comments (keep-alives) are left out."""
        *blocks, self._pending = (self._pending + chunk).split(b"\n\n")
        if len(self._pending) > MAX_EVENT:
            raise EventTooLarge(f"an event over {MAX_EVENT} bytes")
        return [event for event in map(_event, blocks) if event is not None]


def _event(block: bytes) -> StreamEvent | None:
    event = index = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if name == b"event":
            event = value.decode()
        elif name == b"data":
            data.append(value)
        elif name == b"id":
            index = value.decode()
    if event is None:
        return None
    raw = b"\n".join(data)
    return StreamEvent(event, orjson.loads(raw or b"null"), int(index) if index else None, raw)
