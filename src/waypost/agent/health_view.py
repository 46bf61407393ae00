"""One service's instances on a client agent, as the server's health stream
(``/v1/stream/health/service/<name>``) describes them.

Consul's client agents answer health reads from materialized views: one subscription to a
server per (service, token), a snapshot then a change per instance, and the reads filter
the view locally. Answers come out byte for byte as the servers give them (``body``,
``catalog_body``) and as DNS records (``instances``); how events go in: ``stream_view``.

A row is kept only as the server sent it (its JSON bytes): answers decode what they read
(the few fields DNS and the simple filters need, ``dns_rows.DnsRow``; the whole record for
``?filter`` and the catalog's shape) once per change (``StreamView.kept``), which costs
less than keeping each row decoded (several times the row's bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import msgspec
import orjson

from waypost.agent.dns_rows import ROW, DnsRow
from waypost.agent.stream_view import BadEvent, StreamView
from waypost.api import shapes
from waypost.api.common import encode_json
from waypost.dns.backend import Instance
from waypost.state import model, queries
from waypost.stream.sse import StreamEvent

__all__ = ["HealthView"]


def _record(raw: bytes) -> queries.ServiceInstance:
    """A row's whole decoded record, as the servers hold it."""
    data = orjson.loads(raw)
    return queries.ServiceInstance(
        msgspec.convert(_present(data["Node"]), model.Node, strict=False),
        msgspec.convert(_present(data["Service"]), model.NodeService, strict=False),
        [msgspec.convert(_present(c), model.HealthCheck, strict=False) for c in data.get("Checks") or ()],
    )


class HealthView(StreamView[bytes]):
    """The instances of service ``name`` that one token may read, by node and service ID
    (one string, ``node\\0id``: sorted as the pair is, as no name holds a NUL)."""

    __slots__ = ()

    def stream_path(self) -> str:
        return f"/v1/stream/health/service/{quote(self.name, safe='')}"

    def _row(self, event: StreamEvent) -> tuple[str, bytes]:
        raw = event.raw or orjson.dumps(event.data)
        try:
            light = ROW.decode(raw)
            _record(raw)  # refused here, not while answering, if it is not a whole record
        except (KeyError, TypeError, AttributeError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise BadEvent(f"not a health row: {exc}") from None
        return f"{light.Node.Node}\0{light.Service.ID}", raw

    def body(
        self,
        tags: Sequence[str] = (),
        node_meta: Sequence[tuple[str, str]] = (),
        *,
        passing: bool = False,
        keep: Callable[[Any], bool] | None = None,
        key: str = "",
    ) -> bytes:
        """The ``/v1/health/service`` answer for these parameters, byte for byte as the
        server's rows came (``keep`` is the ``?filter``, tested as the servers test it).
        The rows chosen are kept per read ``key`` until the next change, not the answer:
        joined again for each read, the view holds the rows' bytes once."""

        def choose() -> list[bytes]:
            return [
                raw
                for raw, light in self._matching(tags, node_meta)
                if (not passing or light.passing())
                and (keep is None or keep(queries.filter_row(_record(raw))))
            ]

        if not (tags or node_meta or passing or keep):
            chosen = [raw for _, raw in self.in_order()]
        else:
            chosen = self.kept(key, choose) if key else choose()
        return b"[" + b",".join(chosen) + b"]"

    def catalog_body(
        self,
        tags: Sequence[str] = (),
        node_meta: Sequence[tuple[str, str]] = (),
        *,
        keep: Callable[[Any], bool] | None = None,
    ) -> bytes:
        """The ``/v1/catalog/service`` answer: the same instances in the catalog's shape,
        ``?filter`` tested on that shape, as the servers test it."""
        shaped = [shapes.service_node(_record(raw)) for raw, _ in self._matching(tags, node_meta)]
        return encode_json([s for s in shaped if keep(s)] if keep is not None else shaped)

    def _matching(
        self, tags: Sequence[str], node_meta: Sequence[tuple[str, str]]
    ) -> list[tuple[bytes, DnsRow]]:
        """The rows with their DNS fields (decoded while answering: kept, they would cost
        more than the rows), those lacking ``tags`` or ``node_meta`` left out."""
        rows = [(raw, ROW.decode(raw)) for _, raw in self.in_order()]
        return [
            (raw, light)
            for raw, light in rows
            if (not tags or light.has_tags(tags)) and (not node_meta or light.node_meta(node_meta))
        ]

    def instances(self, tag: str | None = None) -> list[Instance]:
        """The DNS view of the instances, ``tag`` matched without case as DNS names are."""
        return [light.instance() for _, light in self._matching((tag,) if tag is not None else (), ())]


def _present(value: Any) -> Any:
    """``value`` without its nulls: the API shows an empty map or list as null where the
    records it decodes into hold an empty one."""
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_present(v) for v in value]
    return value
