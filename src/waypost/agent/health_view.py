"""One service's instances on a client agent, as the server's health stream
(``/v1/stream/health/service/<name>``) describes them.

Consul's client agents answer health reads from materialized views: one subscription to a
server per (service, token), a snapshot then a change per instance, and the reads filter
the view locally. Answers come out byte for byte as the servers give them (``body``,
``catalog_body``) and as DNS records (``instances``); how events go in: ``stream_view``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import orjson

from waypost.agent.stream_view import BadEvent, StreamView
from waypost.api import shapes
from waypost.api.common import encode_json
from waypost.dns.backend import Instance, NodeRecord
from waypost.state import model, queries

__all__ = ["HealthView"]


class _Row:
    __slots__ = ("inst", "raw")

    def __init__(self, raw: bytes, inst: queries.ServiceInstance) -> None:
        self.raw = raw
        self.inst = inst


class HealthView(StreamView[tuple[str, str], _Row]):
    """The instances of service ``name`` that one token may read, by node and service ID."""

    __slots__ = ()

    def _row(self, data: Any) -> tuple[tuple[str, str], _Row]:
        try:
            inst = queries.ServiceInstance(
                msgspec.convert(_present(data["Node"]), model.Node, strict=False),
                msgspec.convert(_present(data["Service"]), model.NodeService, strict=False),
                [
                    msgspec.convert(_present(c), model.HealthCheck, strict=False)
                    for c in data.get("Checks") or ()
                ],
            )
        except (KeyError, TypeError, AttributeError, msgspec.ValidationError) as exc:
            raise BadEvent(f"not a health row: {exc}") from None
        return (inst.node.Node, inst.service.ID), _Row(orjson.dumps(data), inst)

    def body(
        self,
        tags: Sequence[str] = (),
        node_meta: Sequence[tuple[str, str]] = (),
        *,
        passing: bool = False,
        keep: Callable[[Any], bool] | None = None,
    ) -> bytes:
        """The ``/v1/health/service`` answer for these parameters, byte for byte as the
        server's rows came (``keep`` is the ``?filter``, tested as the servers test it)."""
        chosen = [
            row.raw
            for row in self._matching(tags, node_meta)
            if (not passing or row.inst.passing()) and (keep is None or keep(queries.filter_row(row.inst)))
        ]
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
        shaped = [shapes.service_node(row.inst) for row in self._matching(tags, node_meta)]
        return encode_json([s for s in shaped if keep(s)] if keep is not None else shaped)

    def _matching(self, tags: Sequence[str], node_meta: Sequence[tuple[str, str]]) -> list[_Row]:
        rows = [row for _, row in self.in_order()]
        if tags:
            rows = [row for row in rows if queries.has_tags(row.inst.service, tags)]
        if node_meta:
            rows = [row for row in rows if queries.node_matches_meta(row.inst.node, node_meta)]
        return rows

    def instances(self, tag: str | None = None) -> list[Instance]:
        """The DNS view of the instances, ``tag`` matched without case as DNS names are."""
        out = []
        wanted = tag.lower() if tag is not None else None
        for _, row in self.in_order():
            inst = row.inst
            if wanted is not None and wanted not in {t.lower() for t in inst.service.Tags}:
                continue
            status = model.worst_status([c.Status for c in inst.checks])
            out.append(Instance.of(NodeRecord.of(inst.node), inst.service, status))
        return out


def _check(data: Any) -> model.HealthCheck:
    return msgspec.convert(_present(data), model.HealthCheck, strict=False)


def _present(value: Any) -> Any:
    """``value`` without its nulls: the API shows an empty map or list as null where the
    records it decodes into hold an empty one."""
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_present(v) for v in value]
    return value
