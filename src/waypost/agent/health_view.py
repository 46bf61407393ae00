"""One service's instances on a client agent, as a server's delta stream describes them.

Consul's client agents answer health reads from materialized views: one subscription to a
server per (service, token), a snapshot then a change per instance, and the reads filter
the view locally. This is the view itself, with no I/O: the events of
``/v1/stream/health/service/<name>`` go in (``apply``), answers come out (``body``,
``catalog_body``, ``instances``), so the rules below are tested without a server.

- A snapshot (the first, or one after ``new-snapshot``) is gathered aside and replaces the
  rows only at its ``end-of-snapshot``: readers never see half of one.
- The events of one write come together and only the last carries the ``id``; they are
  applied together at that last one, so an answer is always as of a whole write.
- ``index`` is the id of the last write applied: an answer holds every change up to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import orjson

from waypost.api import shapes
from waypost.api.common import encode_json
from waypost.dns.backend import Instance, NodeRecord
from waypost.state import model, queries
from waypost.stream.sse import StreamEvent

__all__ = ["BadEvent", "HealthView"]

_Key = tuple[str, str]


class BadEvent(ValueError):
    """An event that is not a health row: the server and this agent disagree on the
    protocol, and the view must be read again from a snapshot."""


class _Row:
    __slots__ = ("inst", "raw")

    def __init__(self, raw: bytes, inst: queries.ServiceInstance) -> None:
        self.raw = raw
        self.inst = inst


class HealthView:
    """The instances of service ``name`` that one token may read."""

    __slots__ = ("_batch", "_ordered", "_rows", "_staged", "index", "name", "ready")

    def __init__(self, name: str) -> None:
        self.name = name
        self.index = 0
        self.ready = False
        """A whole snapshot has been applied: the view can answer."""
        self._rows: dict[_Key, _Row] = {}
        self._staged: dict[_Key, _Row] | None = {}
        """The snapshot being received; None between snapshots."""
        self._batch: list[StreamEvent] = []
        self._ordered: list[_Row] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def apply(self, event: StreamEvent) -> bool:
        """Whether ``event`` moved the view to a new index (its waiting readers wake)."""
        kind = event.event
        if kind == "new-snapshot":
            self._staged, self._batch = {}, []
            return False
        if kind == "end-of-snapshot":
            if self._staged is None or event.id is None:
                raise BadEvent("end-of-snapshot without a snapshot or an index")
            self._rows, self._staged, self.ready = self._staged, None, True
            return self._moved(event.id)
        if kind not in ("upsert", "delete"):
            return False  # an event this agent does not know yet: nothing it must show
        if self._staged is not None:
            if kind == "upsert":
                key, row = _row(event.data)
                self._staged[key] = row
            return False
        self._batch.append(event)
        if event.id is None:
            return False
        batch, self._batch = self._batch, []
        for each in batch:
            key, row = _row(each.data)
            if each.event == "upsert":
                self._rows[key] = row
            else:
                self._rows.pop(key, None)
        return self._moved(event.id)

    def cut(self) -> None:
        """The stream was cut: a write it was part way through is dropped, as the server
        sends it whole again from the index this view resumes at."""
        self._batch = []

    def expect_snapshot(self) -> None:
        """A stream opened without a resume index starts with a snapshot, unannounced."""
        self._staged, self._batch = {}, []

    def _moved(self, index: int) -> bool:
        self._ordered = None
        self.index = index
        return True

    def _rows_in_order(self) -> list[_Row]:
        """By node then service ID, as the servers list them."""
        if self._ordered is None:
            self._ordered = [row for _, row in sorted(self._rows.items())]
        return self._ordered

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
        return [
            row
            for row in self._rows_in_order()
            if queries.has_tags(row.inst.service, tags)
            and queries.node_matches_meta(row.inst.node, node_meta)
        ]

    def instances(self, tag: str | None = None) -> list[Instance]:
        """The DNS view of the instances, ``tag`` matched without case as DNS names are."""
        out = []
        wanted = tag.lower() if tag is not None else None
        for row in self._rows_in_order():
            inst = row.inst
            if wanted is not None and wanted not in {t.lower() for t in inst.service.Tags}:
                continue
            status = model.worst_status([c.Status for c in inst.checks])
            out.append(Instance.of(NodeRecord.of(inst.node), inst.service, status))
        return out


def _row(data: Any) -> tuple[_Key, _Row]:
    try:
        inst = queries.ServiceInstance(
            msgspec.convert(_present(data["Node"]), model.Node, strict=False),
            msgspec.convert(_present(data["Service"]), model.NodeService, strict=False),
            [msgspec.convert(_present(c), model.HealthCheck, strict=False) for c in data.get("Checks") or ()],
        )
    except (KeyError, TypeError, AttributeError, msgspec.ValidationError) as exc:
        raise BadEvent(f"not a health row: {exc}") from None
    return (inst.node.Node, inst.service.ID), _Row(orjson.dumps(data), inst)


def _present(value: Any) -> Any:
    """``value`` without its nulls: the API shows an empty map or list as null where the
    records it decodes into hold an empty one."""
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_present(v) for v in value]
    return value
