"""A KV prefix on a client agent, as the server's KV stream (``/v1/stream/kv/<prefix>``)
describes it: a view answering ``/v1/kv/<prefix>?recurse`` and ``?keys`` reads, the
reads consul-template's ``tree`` and ``ls`` block on."""

from __future__ import annotations

from urllib.parse import quote

import orjson

from waypost.agent.stream_view import BadEvent, StreamView
from waypost.api.common import encode_json
from waypost.api.kv import key_listing
from waypost.stream.sse import StreamEvent

__all__ = ["KVView"]


class KVView(StreamView[bytes]):
    """Each key under prefix ``name`` with its entry as the servers show it (JSON bytes)."""

    __slots__ = ()

    def stream_path(self) -> str:
        return f"/v1/stream/kv/{quote(self.name, safe='/')}"

    def _row(self, event: StreamEvent) -> tuple[str, bytes]:
        data = event.data
        key = data.get("Key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key.startswith(self.name):
            raise BadEvent(f"not a KV entry under {self.name!r}: {data!r:.200}")
        return key, event.raw or orjson.dumps(data)

    def body(self, *, keys: bool, separator: str = "") -> tuple[int, bytes]:
        """Status and body of the recursive read (``keys``: of the key listing), 404 for
        an empty prefix as the servers answer it."""
        entries = self.in_order()
        if keys:
            if not entries and self.name:
                return 404, b""
            return 200, encode_json(key_listing((k for k, _ in entries), self.name, separator))
        if not entries:
            return 404, b""
        return 200, b"[" + b",".join(raw for _, raw in entries) + b"]"
