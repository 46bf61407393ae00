"""The shapes every catalog read shares, so each endpoint states only what differs."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import apply_filter, encode_json, filter_predicate, node_meta_args
from waypost.api.http import Request, Response
from waypost.state import queries
from waypost.state.indexes import Indexes
from waypost.state.model import Node

if TYPE_CHECKING:
    import asyncio

    from waypost.api.app import ApiApp

__all__ = ["from_peer", "indexed_read", "instances_read", "node_read"]


def from_peer(req: Request) -> bool:
    """Whether the read asks for what a cluster peer exported (``?peer=NAME``).

    Peering does not exist here, so every peer name is unknown, and Consul answers a read
    about an unknown peer with an empty result of the endpoint's usual shape.
    """
    return bool(req.arg("peer"))


def indexed_read(
    app: ApiApp, req: Request, fetch: Callable[[Indexes], queries.Read], selectors: Collection[str] | None
) -> Response | asyncio.Future[Response]:
    """A blocking read of ``fetch``'s records, with ``?filter`` applied on the row type's
    ``selectors``; None for an endpoint that takes no filter (or applies it itself)."""
    peer = from_peer(req)

    def query() -> QueryResult:
        index, topics, found = fetch(app.state.indexes)
        if peer:
            found = {} if isinstance(found, dict) else []
        kept = found if selectors is None else apply_filter(req, found, selectors)
        return QueryResult(index, topics, encode_json(kept))

    return blocking_read(app.state, req, query, cache=app.cache)


def instances_read(
    app: ApiApp,
    req: Request,
    shape: Callable[[queries.ServiceInstance], Any],
    selectors: Collection[str],
    *,
    passing: bool = False,
    row: Callable[[queries.ServiceInstance], Any] | None = None,
) -> Response | asyncio.Future[Response]:
    """``catalog/service`` and ``health/service``: the same instances in two shapes.

    ``?filter`` tests ``row`` when given: a shape that leaves out zero values (Consul's
    ``omitempty``) would hide them from an expression that Consul's bexpr, reading the Go
    struct, still sees."""
    name = req.param
    tags = req.args("tag")
    meta = node_meta_args(req)
    keep = filter_predicate(req, selectors) if row is not None else None

    def fetch(idx: Indexes) -> queries.Read:
        index, topics, found = queries.service_instances(
            idx, name, tags=tags, node_meta=meta, passing_only=passing
        )
        if keep is not None and row is not None:
            found = [i for i in found if keep(row(i))]
        return index, topics, [shape(i) for i in found]

    return indexed_read(app, req, fetch, selectors if row is None else None)


def node_read(
    app: ApiApp,
    req: Request,
    answer: Callable[[Indexes, Node], Any],
    missing: bytes,
    *,
    missing_status: int = 200,
) -> Response | asyncio.Future[Response]:
    """A blocking read of one node (``req.param``): ``answer``'s shape of it, or ``missing``
    for an unknown node or one asked of a peer, each endpoint answering that as Consul does.

    A missing node's index is the nodes table's, so its watchers wake on any node change."""
    name = req.param
    peer = from_peer(req)

    def query() -> QueryResult:
        idx = app.state.indexes
        found = None if peer else idx.nodes.get(name)
        index = idx.topics.index(("node", name)) or idx.table_index("nodes")
        if found is None:
            return QueryResult(index, (("node", name), ("nodes",)), missing, missing_status)
        return QueryResult(index, (("node", name),), encode_json(answer(idx, found)))

    return blocking_read(app.state, req, query, cache=app.cache)
