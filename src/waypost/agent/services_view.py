"""The catalog's service names and tags on a client agent, as the server's catalog stream
(``/v1/stream/catalog/services``) describes them: a view answering ``/v1/catalog/services``
reads, the list Prometheus, Traefik and Fabio block on to learn which services exist."""

from __future__ import annotations

from waypost.agent.stream_view import BadEvent, StreamView
from waypost.api.common import encode_json
from waypost.stream.sse import StreamEvent

__all__ = ["ServicesView"]


class ServicesView(StreamView[list[str]]):
    """Each service name with the union of its instances' tags, as one token sees them."""

    __slots__ = ()

    def stream_path(self) -> str:
        return "/v1/stream/catalog/services"

    def _row(self, event: StreamEvent) -> tuple[str, list[str]]:
        data = event.data
        if not isinstance(data, dict) or len(data) != 1:
            raise BadEvent(f"not a service entry: {data!r:.200}")
        [(name, tags)] = data.items()
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise BadEvent(f"not a service entry: {data!r:.200}")
        return name, tags

    def body(self) -> bytes:
        """The ``/v1/catalog/services`` answer, names in the servers' order."""
        return encode_json(dict(self.in_order()))
