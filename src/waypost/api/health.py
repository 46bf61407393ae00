"""/v1/health: instances with their checks, the reads that load balancers poll hardest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import HTTPError, apply_filter, encode_json, node_meta_args
from waypost.api.http import Request, Response
from waypost.state import queries

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["service_health_entry"]


def service_health_entry(inst: queries.ServiceInstance) -> dict[str, Any]:
    return {"Node": inst.node, "Service": inst.service, "Checks": inst.checks}


def service(app: ApiApp, req: Request) -> Response | Any:
    name = req.param
    tags = req.args("tag")
    meta = node_meta_args(req)
    passing = req.flag("passing") and req.arg("passing") not in ("false", "0")

    def query() -> QueryResult:
        index, topics, found = queries.service_instances(
            app.state.indexes, name, tags=tags, node_meta=meta, passing_only=passing
        )
        entries = [service_health_entry(i) for i in found]
        if req.arg("filter"):
            entries = apply_filter(req, entries)
        return QueryResult(index, topics, encode_json(entries))

    return blocking_read(app.state, req, query, cache=app.cache)


def node(app: ApiApp, req: Request) -> Response | Any:
    name = req.param

    def query() -> QueryResult:
        index, topics, checks = queries.node_checks(app.state.indexes, name)
        return QueryResult(index, topics, encode_json(apply_filter(req, checks)))

    return blocking_read(app.state, req, query, cache=app.cache)


def checks(app: ApiApp, req: Request) -> Response | Any:
    name = req.param

    def query() -> QueryResult:
        index, topics, found = queries.health_checks_for_service(app.state.indexes, name)
        return QueryResult(index, topics, encode_json(apply_filter(req, found)))

    return blocking_read(app.state, req, query, cache=app.cache)


def state(app: ApiApp, req: Request) -> Response | Any:
    wanted = req.param
    if wanted not in ("any", "passing", "warning", "critical"):
        raise HTTPError(400, f"Invalid state: {wanted!r}")
    meta = node_meta_args(req)

    def query() -> QueryResult:
        index, topics, found = queries.state_checks(app.state.indexes, wanted, meta)
        return QueryResult(index, topics, encode_json(apply_filter(req, found)))

    return blocking_read(app.state, req, query, cache=app.cache)
