"""/v1/query: prepared queries (create, list, read, update, delete, execute, explain), and the
internal endpoint a server of another datacenter executes a failed-over query on.

The route rules (``acl_rules.py``) check ``query`` access by name and filter the list; two
things depend on more than the route, so these handlers apply them, as Consul's endpoint
does: a query's Token shows only to a caller with ``acl:write``, and execution filters
instances with the query's own Token when it has one, else the caller's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from waypost.acl.authorizer import Authorizer
from waypost.api import shapes
from waypost.api.acl import NOT_FOUND as ACL_NOT_FOUND
from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import HTTPError, decode_json, encode_json, require_param
from waypost.api.gate import request_secret
from waypost.api.http import Request, Response
from waypost.gostrconv import atoi
from waypost.query import executor
from waypost.query.definition import REDACTED_TOKEN, QueryError, decode_definition
from waypost.query.ops import (
    NOT_FOUND,
    QueryNotFoundError,
    Resolver,
    create_query,
    delete_query,
    live_queries,
    update_query,
)
from waypost.state import schema
from waypost.state.model import PreparedQuery

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from waypost.api.app import ApiApp

__all__ = ["create", "execute_remote", "list_", "one"]

_TOPICS = ((schema.PREPARED_QUERIES.name,),)
_RESOLVER = Resolver()


def _caller(app: ApiApp, req: Request) -> Authorizer | None:
    """The caller's permissions; None while ACLs are off (everything allowed, nothing hidden)."""
    return app.gate.authorizer(req) if app.gate is not None else None


def _shown(query: PreparedQuery, authz: Authorizer | None) -> PreparedQuery:
    """Consul's ``redactPreparedQueryTokens``."""
    if authz is None or not query.Token or authz.allowed("acl", "", "write"):
        return query
    return msgspec.structs.replace(query, Token=REDACTED_TOKEN)


def _fail(exc: Exception) -> HTTPError:
    if isinstance(exc, QueryNotFoundError):
        return HTTPError(404, str(exc))
    return HTTPError(400, str(exc))


async def create(app: ApiApp, req: Request) -> Response:
    try:
        query = decode_definition(decode_json(req))
        qid = await create_query(app.state, query)
    except QueryError as exc:
        raise _fail(exc) from None
    return Response(encode_json({"ID": qid}))


def list_(app: ApiApp, req: Request) -> Response | Awaitable[Response]:
    authz = _caller(app, req)

    def query() -> QueryResult:
        idx = app.state.indexes
        found = [_shown(q, authz) for q in live_queries(idx)]
        return QueryResult(idx.table_index(schema.PREPARED_QUERIES.name), _TOPICS, encode_json(found))

    return blocking_read(app.state, req, query)


def one(app: ApiApp, req: Request) -> Response | Awaitable[Response]:
    """``/v1/query/<id>`` and its ``/execute`` and ``/explain``, as Consul routes them."""
    param = require_param(req, "query ID")
    for suffix, handler in (("/execute", _execute), ("/explain", _explain)):
        if param.endswith(suffix):
            if req.method != "GET":
                raise HTTPError(405, f"method {req.method} not allowed")
            return handler(app, req, param[: -len(suffix)])
    if req.method == "PUT" or req.method == "POST":
        return _update(app, req, param)
    if req.method == "DELETE":
        return _delete(app, req, param)
    return _get(app, req, param)


def _get(app: ApiApp, req: Request, qid: str) -> Response | Awaitable[Response]:
    authz = _caller(app, req)

    def query() -> QueryResult:
        idx = app.state.indexes
        found = next((q for q in live_queries(idx) if qid == q.ID), None)
        index = idx.table_index(schema.PREPARED_QUERIES.name)
        if found is None:
            return QueryResult(index, _TOPICS, NOT_FOUND.encode(), 404, "text/plain")
        return QueryResult(index, _TOPICS, encode_json([_shown(found, authz)]))

    return blocking_read(app.state, req, query)


async def _update(app: ApiApp, req: Request, qid: str) -> Response:
    try:
        body = decode_json(req, allow_empty=True)
        query = msgspec.structs.replace(decode_definition(body), ID=qid)
        await update_query(app.state, query)
    except QueryError as exc:
        raise _fail(exc) from None
    return Response(b"")


async def _delete(app: ApiApp, req: Request, qid: str) -> Response:
    try:
        await delete_query(app.state, qid)
    except QueryError as exc:
        raise _fail(exc) from None
    return Response(b"")


def _resolve(app: ApiApp, name: str) -> PreparedQuery:
    try:
        return _RESOLVER.resolve(app.state.indexes, name)
    except (QueryError, QueryNotFoundError) as exc:
        raise _fail(exc) from None


def _explain(app: ApiApp, req: Request, name: str) -> Response | Awaitable[Response]:
    authz = _caller(app, req)
    found = _resolve(app, name)
    idx = app.state.indexes
    body = shapes.QueryExplain(_shown(found, authz), *_meta(app))
    result = QueryResult(idx.table_index(schema.PREPARED_QUERIES.name), _TOPICS, encode_json(body))
    return blocking_read(app.state, req, lambda: result)


def _meta(app: ApiApp) -> tuple[int, int, bool, str, bool, int]:
    """Consul's QueryMeta as the execute and explain bodies carry it."""
    idx = app.state.indexes
    return (
        idx.table_index(schema.PREPARED_QUERIES.name),
        app.state.last_contact_ms() * 1_000_000,
        idx.leader is not None,
        "leader",
        False,
        0,
    )


def _limit(req: Request) -> int:
    raw = req.arg("limit")
    if not raw:
        return 0
    try:
        return atoi(raw)
    except ValueError as exc:
        raise HTTPError(400, f"Bad limit: {exc}") from None


def _keeper(app: ApiApp, req: Request, token: str) -> executor.Keep | None:
    """The ACL filter for instances: the query's Token if it has one, else the caller's."""
    gate = app.gate
    if gate is None:
        return None
    authz = gate.resolver.authorizer(app.state.indexes, token) if token else gate.authorizer(req)
    if authz is None:
        raise HTTPError(403, ACL_NOT_FOUND)
    if authz.unrestricted:
        return None
    return lambda node, service: (
        authz.allowed("node", node, "read") and authz.allowed("service", service, "read")
    )


def _source_ip(req: Request) -> str:
    forwarded = req.headers.get("x-forwarded-for", "")
    if forwarded:
        return forwarded.split(",")[0].strip()
    return req.remote.rpartition(":")[0].strip("[]")


def _answer(app: ApiApp, result: executor.Execution) -> bytes:
    nodes: list[Any] = (
        result.remote_nodes
        if result.remote_nodes is not None
        else [shapes.check_service_node(i) for i in result.instances]
    )
    body = shapes.QueryExecution(
        result.service,
        nodes,
        result.dns,
        result.datacenter,
        "",
        result.failovers,
        *_meta(app),
        result.filtered,
    )
    return encode_json(body)


async def _execute(app: ApiApp, req: Request, name: str) -> Response:
    found = _resolve(app, name)
    limit = _limit(req)
    result = await executor.execute(
        app.state.indexes,
        found,
        app.agent.wan,
        limit=limit,
        connect=req.flag("connect") and req.arg("connect") not in ("false", "0"),
        source=executor.Source(req.arg("near") or "", _source_ip(req), app.agent.node.Node),
        keep=_keeper(app, req, found.Token),
        token=request_secret(req) or None,
        rng=app.agent.rng,
    )
    index, contact_ns, leader, consistency, *_ = _meta(app)
    headers = [  # Consul's setMeta: the Go API fails to read a QueryMeta without them
        ("X-Consul-Index", str(max(1, index))),
        ("X-Consul-Knownleader", "true" if leader else "false"),
        ("X-Consul-Lastcontact", str(contact_ns // 1_000_000)),
        ("X-Consul-Effective-Consistency", consistency),
    ]
    if result.filtered:
        headers.append(("X-Consul-Results-Filtered-By-ACLs", "true"))
    return Response(_answer(app, result), headers=headers)


async def execute_remote(app: ApiApp, req: Request) -> Response:
    """A definition another datacenter failed over to us (Consul's ``ExecuteRemote``): run
    here only, shuffled, never failed over again."""
    try:
        query = msgspec.convert(decode_json(req), PreparedQuery)
    except msgspec.ValidationError as exc:
        raise HTTPError(400, f"Request decode failed: {exc}") from None
    result = executor.run_local(
        app.state.indexes,
        query,
        app.agent.datacenter,
        limit=_limit(req),
        keep=_keeper(app, req, query.Token),
        rng=app.agent.rng,
    )
    return Response(_answer(app, result))
