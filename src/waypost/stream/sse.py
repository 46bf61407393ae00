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
    ``end-of-snapshot`` or ``new-snapshot``; ``id`` is set on the last event of each revision."""

    event: str
    data: Any
    id: int | None = None


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
    fields: dict[str, str] = {}
    for line in block.decode().split("\n"):
        if line and not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    if "event" not in fields:
        return None
    index = fields.get("id")
    return StreamEvent(
        fields["event"], orjson.loads(fields.get("data") or "null"), int(index) if index else None
    )
