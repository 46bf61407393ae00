"""What each route needs from the caller's token: one entry per route in ``routes.py``.

An entry is a check run at dispatch, before the handler: it raises 403 "Permission denied"
(Consul's wording, naming the token, the permission and the resource) or returns a row
filter that ``gate.py`` applies to the handler's JSON answer, for the reads Consul filters
rather than refuses. ``OPEN`` routes need nothing (Consul's status, datacenter lists,
bootstrap, token/self). A route missing from ``NEEDS`` fails the route-coverage test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from waypost.acl.resolve import ANONYMOUS_ID
from waypost.api.acl_catalog import Grant, deregister_grants, register_grants, txn_grants
from waypost.api.catalog import deregistration, registration
from waypost.api.common import HTTPError, decode_json, json_response
from waypost.api.http import Request, Response
from waypost.api.txn import decode_operations
from waypost.api.txn_ops import KVOp, SessionOp, TxnOp
from waypost.connect.intentions import with_id
from waypost.query.definition import acl_prefix
from waypost.query.ops import match

if TYPE_CHECKING:
    from waypost.acl.authorizer import Authorizer
    from waypost.api.app import ApiApp

__all__ = ["NEEDS", "OPEN", "Filter", "Need", "denied"]

Rows = Callable[["Authorizer", Any], Any]
"""Keeps the readable part of a decoded JSON answer."""


class Filter(NamedTuple):
    rows: Rows
    kinds: frozenset[str]
    """The resource kinds ``rows`` tests: a token that reads all of them needs no filtering."""
    empty_is_404: bool = False
    marked: bool = True
    """Whether a trimmed answer carries X-Consul-Results-Filtered-By-ACLs; Consul's /v1/txn
    sends only its leader and last-contact headers, so it never does."""


Check = Callable[["ApiApp", Request, "Authorizer"], "Filter | Response | None"]
"""Raises the denial, or returns a row filter, or (for /v1/txn) the refusal itself."""


class Need(NamedTuple):
    check: Check | None
    """None: an open route."""


OPEN = Need(None)


def denied(authz: Authorizer, kind: str, need: str, name: str | None = None) -> HTTPError:
    """Consul's ``PermissionDeniedError`` text."""
    who = "anonymous token" if authz.accessor == ANONYMOUS_ID else f"token with AccessorID '{authz.accessor}'"
    message = f"Permission denied: {who} lacks permission '{kind}:{need}'"
    if name is not None:
        message += f' on "{name}"'
    if authz.accessor == ANONYMOUS_ID:
        message += ". The anonymous token is used implicitly when a request does not specify a token."
    return HTTPError(403, message)


Name = Callable[["ApiApp", Request], str]


def _param(app: ApiApp, req: Request) -> str:
    return req.param


def _agent_node(app: ApiApp, req: Request) -> str:
    return app.agent.node.Node


def _field(body: Any, *path: str) -> str:
    """A name from a decoded JSON body (``Node``, ``Service.Service``...), keys matched case-blind."""
    value = body
    for part in path:
        if not isinstance(value, dict):
            return ""
        value = next((v for k, v in value.items() if str(k).lower() == part.lower()), None)
    return value if isinstance(value, str) else ""


def _body(req: Request) -> Any:
    return decode_json(req, allow_empty=True)


def _body_field(*path: str) -> Name:
    return lambda app, req: _field(_body(req), *path)


def _registered_name(app: ApiApp, req: Request) -> str:
    """A service definition's name: ``Name``, or ``Service`` as older clients send it."""
    body = _body(req)
    return _field(body, "Name") or _field(body, "Service")


def _local_service(app: ApiApp, req: Request) -> str:
    svc = app.agent.local.services.get(req.param)
    return svc.Service if svc is not None else req.param


def _session_node(app: ApiApp, req: Request) -> str:
    session = app.state.indexes.sessions.get(req.param)
    return session.Node if session is not None else ""


def _require(authz: Authorizer, kind: str, access: str, name: str) -> None:
    if not authz.allowed(kind, name, access):
        raise denied(authz, kind, access, name)


def need(kind: str, access: str, name: Name | None = None) -> Need:
    def check(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
        resource = name(app, req) if name is not None else ""
        if not authz.allowed(kind, resource, access):
            raise denied(authz, kind, access, resource if name is not None else None)
        return None

    return Need(check)


def filtered(rows: Rows, *kinds: str) -> Need:
    result = Filter(rows, frozenset(kinds))
    return Need(lambda app, req, authz: result)


def _local_check(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    """A service's check needs service:write on it, a node check node:write, as Consul's."""
    check = app.agent.local.checks.get(req.param)
    if check is not None and check.ServiceName:
        _require(authz, "service", "write", check.ServiceName)
    else:
        _require(authz, "node", "write", app.agent.node.Node)
    return None


def _check_register(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    service_id = _field(_body(req), "ServiceID")
    svc = app.agent.local.services.get(service_id) if service_id else None
    if svc is not None:
        _require(authz, "service", "write", svc.Service)
    else:
        _require(authz, "node", "write", app.agent.node.Node)
    return None


# -- row filters ---------------------------------------------------------------------------


def _node_ok(authz: Authorizer, name: Any) -> bool:
    return isinstance(name, str) and authz.allowed("node", name, "read")


def _service_ok(authz: Authorizer, name: Any) -> bool:
    return isinstance(name, str) and authz.allowed("service", name, "read")


def _list(keep: Callable[[Authorizer, Any], bool]) -> Rows:
    def rows(authz: Authorizer, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [row for row in value if keep(authz, row)]

    return rows


def _dict(keep: Callable[[Authorizer, Any, Any], bool]) -> Rows:
    def rows(authz: Authorizer, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {k: v for k, v in value.items() if keep(authz, k, v)}

    return rows


def _check_ok(authz: Authorizer, check: Any) -> bool:
    return _node_ok(authz, check.get("Node")) and (
        not check.get("ServiceName") or _service_ok(authz, check.get("ServiceName"))
    )


def _catalog_row_ok(authz: Authorizer, row: Any) -> bool:
    return _node_ok(authz, row.get("Node")) and _service_ok(authz, row.get("ServiceName"))


def _health_row_ok(authz: Authorizer, row: Any) -> bool:
    node, service = row.get("Node") or {}, row.get("Service") or {}
    return _node_ok(authz, node.get("Node")) and _service_ok(authz, service.get("Service"))


def _connect_rows(row_ok: Callable[[Authorizer, Any], bool]) -> Need:
    """catalog/connect and health/connect: Consul answers nothing, not even the proxies the
    token may read, unless it may read the service they front (its ServiceNodes' early
    return); then each row by its own node and service."""
    rows = Filter(_list(row_ok), frozenset({"node", "service"}))
    nothing = Filter(lambda authz, value: [] if isinstance(value, list) else value, frozenset({"service"}))
    return Need(lambda app, req, authz: rows if _service_ok(authz, req.param) else nothing)


def _node_services(authz: Authorizer, value: Any) -> Any:
    """catalog/node and catalog/node-services: nothing without node:read, then the services."""
    if not isinstance(value, dict) or not _node_ok(authz, (value.get("Node") or {}).get("Node")):
        return None
    value = dict(value)
    services = value.get("Services")
    if isinstance(services, dict):
        value["Services"] = {k: s for k, s in services.items() if _service_ok(authz, s.get("Service"))}
    elif isinstance(services, list):
        value["Services"] = [s for s in services if _service_ok(authz, s.get("Service"))]
    return value


def _node_info(authz: Authorizer, info: Any) -> Any:
    """internal/ui nodes: a node needs node:read, then its services and checks their own."""
    if not isinstance(info, dict) or not _node_ok(authz, info.get("Node")):
        return None
    services = [s for s in info.get("Services") or () if _service_ok(authz, s.get("Service"))]
    checks = [c for c in info.get("Checks") or () if _check_ok(authz, c)]
    return {**info, "Services": services, "Checks": checks}


def _node_infos(authz: Authorizer, value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [kept for info in value if (kept := _node_info(authz, info)) is not None]


def _kv_read(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    if req.flag("recurse"):
        return _KV_RECURSE
    if req.flag("keys"):
        return _KV_KEYS
    _require(authz, "key", "read", req.param)
    return None


_KEY = frozenset({"key"})
_KV_RECURSE = Filter(
    _list(lambda a, row: a.allowed("key", row.get("Key", ""), "read")), _KEY, empty_is_404=True
)
_KV_KEYS = Filter(_list(lambda a, key: a.allowed("key", key, "read")), _KEY)


def _kv_delete(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    if req.flag("recurse") and not authz.write_prefix("key", req.param):
        raise denied(authz, "key", "write", req.param)
    _require(authz, "key", "write", req.param)
    return None


def _query_row_ok(authz: Authorizer, row: Any) -> bool:
    """Consul's ``filterPreparedQueries``: a named query (or template) needs query:read on
    its name; an unnamed one shows only to ACL managers, though its ID alone executes it."""
    name, template = row.get("Name") or "", (row.get("Template") or {}).get("Type")
    if not name and not template:
        return authz.allowed("acl", "", "write")
    return authz.allowed("query", name, "read")


def _query_body(app: ApiApp, req: Request, authz: Authorizer) -> None:
    """Write on the name a created or updated definition takes, when a name applies."""
    body = _body(req)
    name = _field(body, "Name")
    if name or _field(body, "Template", "Type"):
        _require(authz, "query", "write", name)


def _query_create(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    _query_body(app, req, authz)
    return None


def _query_one(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    """``/v1/query/<id>``: query:read (GET, explain) or write (PUT, DELETE) on the stored
    query's name, and for PUT on the new name too. Executing needs nothing here: the
    instances are filtered with the query's token, or the caller's."""
    name = req.param
    if name.endswith("/execute"):
        return None
    explain = name.endswith("/explain")
    stored = match(app.state.indexes, name[: -len("/explain")] if explain else name)
    if stored is not None and (explain or name.lower() == stored.ID):
        prefix = acl_prefix(stored)
        access = "read" if req.method == "GET" else "write"
        if prefix is not None:
            _require(authz, "query", access, prefix)
    if req.method == "PUT":
        _query_body(app, req, authz)
    return None


def _session_create(app: ApiApp, req: Request) -> str:
    return _field(_body(req), "Node") or app.agent.node.Node


def _catalog_register(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    """Vetted as the handler decodes the body, against what the catalog holds (a check
    needs write on the service it joins, not one the body names)."""
    for kind, name in register_grants(app.state.indexes, registration(app, req)):
        _require(authz, kind, "write", name)
    return None


def _catalog_deregister(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    """node:write removes anything on the node; without it, write on what is removed."""
    target = deregistration(req)
    if not authz.allowed("node", target.node, "write"):
        for kind, name in deregister_grants(app.state.indexes, target):
            _require(authz, kind, "write", name)
    return None


_TXN_KV_FILTERED = frozenset({"get", "get-tree"})
"""KV reads Consul leaves to the result filter (``kvsPreApply``): a key the token cannot
read is dropped from Results, the transaction still runs."""
_TXN_KV_READS = frozenset({"check-index", "check-session"})
"""The KV checks Consul asks key read for; every other KV verb, ``check-not-exists``
included, needs key write (``delete-tree`` on the whole prefix)."""


def _txn_op_need(app: ApiApp, op: TxnOp, catalog: list[Grant]) -> list[tuple[str, str, str]]:
    """(kind, name, access) one transaction operation needs, read off the operation the
    handler itself decoded (so whatever the handler would run is what gets checked); a
    node, service or check operation needs its ``catalog`` grants (see ``acl_catalog``)."""
    if isinstance(op, KVOp):
        if op.verb in _TXN_KV_FILTERED:
            return []
        return [("key", op.key, "read" if op.verb in _TXN_KV_READS else "write")]
    if isinstance(op, SessionOp):
        session = app.state.indexes.sessions.get(op.session)
        return [("session", session.Node if session is not None else "", "write")]
    return [(kind, name, "write") for kind, name in catalog]


def _txn(app: ApiApp, req: Request, authz: Authorizer) -> Filter | Response | None:
    """Every operation is checked before any runs; denied ones answer 409 with Consul's Errors.
    A body the handler cannot decode is refused here with the handler's own message. The
    KV, node, service and check results (gets included) are filtered by read, as Consul's."""
    errors = []
    ops = decode_operations(app, req)
    for index, (op, catalog) in enumerate(zip(ops, txn_grants(app.state.indexes, ops), strict=True)):
        for kind, name, access in _txn_op_need(app, op, catalog):
            if isinstance(op, KVOp) and op.verb == "delete-tree":
                ok = authz.write_prefix("key", name)
            else:
                ok = authz.allowed(kind, name, access)
            if not ok:
                errors.append({"OpIndex": index, "What": denied(authz, kind, access, name).message})
                break
    return json_response({"Results": None, "Errors": errors}, 409) if errors else _TXN_RESULTS


def _txn_result_ok(authz: Authorizer, result: Any) -> bool:
    """Consul's ``FilterTxnResults``: each result needs read on what it shows."""
    if not isinstance(result, dict):
        return True
    if isinstance(kv := result.get("KV"), dict):
        return authz.allowed("key", kv.get("Key") or "", "read")
    if isinstance(node := result.get("Node"), dict):
        return _node_ok(authz, node.get("Node"))
    if isinstance(svc := result.get("Service"), dict):
        return _service_ok(authz, svc.get("Service"))
    if isinstance(check := result.get("Check"), dict):
        if check.get("ServiceName"):
            return _service_ok(authz, check.get("ServiceName"))
        return _node_ok(authz, check.get("Node"))
    return True


def _txn_results(authz: Authorizer, value: Any) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("Results"), list):
        return value
    return {**value, "Results": [r for r in value["Results"] if _txn_result_ok(authz, r)]}


_TXN_RESULTS = Filter(_txn_results, frozenset({"key", "node", "service"}), marked=False)


def _token_valid(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    return None


def _query_name(param: str) -> Name:
    """A service named by a query parameter (``[namespace/]name``)."""
    return lambda app, req: (req.arg(param) or "").rpartition("/")[2]


def _intention_ok(authz: Authorizer, row: Any) -> bool:
    """Consul lets a reader of intentions on either end read the intention."""
    return any(
        isinstance(name, str) and authz.allowed("intention", name, "read")
        for name in (row.get("SourceName"), row.get("DestinationName"))
    )


def _intention_by_id(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    found = with_id(app.state.indexes.intentions.values(), req.param)
    if found is None:
        return None
    ends = {"SourceName": found.SourceName, "DestinationName": found.DestinationName}
    if req.method != "GET":
        _require(authz, "intention", "write", found.DestinationName)
    elif not _intention_ok(authz, ends):
        raise denied(authz, "intention", "read", found.DestinationName)
    return None


def _intention_match(app: ApiApp, req: Request, authz: Authorizer) -> Filter | None:
    """Consul refuses the whole match unless every name asked about is readable."""
    for name in req.args("name"):
        _require(authz, "intention", "read", name.rpartition("/")[2])
    return None


_SESSIONS = filtered(_list(lambda a, s: a.allowed("session", s.get("Node", ""), "read")), "session")
_CHECKS = filtered(_list(_check_ok), "node", "service")
_SERVICE_NAMES = filtered(_dict(lambda a, name, tags: _service_ok(a, name)), "service")
_NODE_SERVICES = filtered(_node_services, "node", "service")
ACL_READ, ACL_WRITE = need("acl", "read"), need("acl", "write")
OPERATOR_READ, OPERATOR_WRITE = need("operator", "read"), need("operator", "write")
AGENT_READ, AGENT_WRITE = need("agent", "read", _agent_node), need("agent", "write", _agent_node)

NEEDS: dict[tuple[str, str], Need] = {
    ("GET", "/"): OPEN,
    ("HEAD", "/"): OPEN,
    ("GET", "/ui/:path"): OPEN,
    ("GET", "/v1/agent/self"): AGENT_READ,
    ("GET", "/v1/agent/members"): filtered(_list(lambda a, m: _node_ok(a, m.get("Name"))), "node"),
    ("GET", "/v1/agent/host"): OPERATOR_READ,
    ("GET", "/v1/agent/services"): filtered(
        _dict(lambda a, k, s: _service_ok(a, s.get("Service"))), "service"
    ),
    ("GET", "/v1/agent/service/:id"): need("service", "read", _local_service),
    ("GET", "/v1/agent/checks"): filtered(
        _dict(
            lambda a, k, c: (
                _check_ok(a, c) if c.get("ServiceName") else a.allowed("node", c.get("Node", ""), "read")
            )
        ),
        "node",
        "service",
    ),
    ("GET", "/v1/agent/metrics"): AGENT_READ,
    ("GET", "/v1/agent/monitor"): AGENT_READ,
    ("GET", "/v1/agent/health/service/name/:name"): need("service", "read", _param),
    ("GET", "/v1/agent/health/service/id/:id"): need("service", "read", _local_service),
    ("PUT", "/v1/agent/service/register"): need("service", "write", _registered_name),
    ("PUT", "/v1/agent/service/deregister/:id"): need("service", "write", _local_service),
    ("PUT", "/v1/agent/service/maintenance/:id"): need("service", "write", _local_service),
    ("PUT", "/v1/agent/maintenance"): need("node", "write", _agent_node),
    ("PUT", "/v1/agent/check/register"): Need(_check_register),
    ("PUT", "/v1/agent/check/deregister/:id"): Need(_local_check),
    ("PUT", "/v1/agent/check/pass/:id"): Need(_local_check),
    ("PUT", "/v1/agent/check/warn/:id"): Need(_local_check),
    ("PUT", "/v1/agent/check/fail/:id"): Need(_local_check),
    ("PUT", "/v1/agent/check/update/:id"): Need(_local_check),
    ("PUT", "/v1/agent/reload"): AGENT_WRITE,
    ("PUT", "/v1/agent/leave"): AGENT_WRITE,
    ("PUT", "/v1/agent/join/:address"): AGENT_WRITE,
    ("PUT", "/v1/agent/force-leave/:node"): OPERATOR_WRITE,
    ("PUT", "/v1/agent/token/:type"): AGENT_WRITE,
    ("PUT", "/v1/catalog/register"): Need(_catalog_register),
    ("PUT", "/v1/catalog/deregister"): Need(_catalog_deregister),
    ("GET", "/v1/catalog/datacenters"): OPEN,
    ("GET", "/v1/catalog/nodes"): filtered(_list(lambda a, n: _node_ok(a, n.get("Node"))), "node"),
    ("GET", "/v1/catalog/services"): _SERVICE_NAMES,
    ("GET", "/v1/internal/ui/services"): filtered(_list(lambda a, s: _service_ok(a, s["Name"])), "service"),
    ("GET", "/v1/internal/ui/nodes"): filtered(_node_infos, "node", "service"),
    ("GET", "/v1/internal/ui/node/:node"): filtered(_node_info, "node", "service"),
    ("GET", "/v1/catalog/service/:name"): filtered(_list(_catalog_row_ok), "node", "service"),
    ("GET", "/v1/catalog/node/:node"): _NODE_SERVICES,
    ("GET", "/v1/catalog/node-services/:node"): _NODE_SERVICES,
    ("GET", "/v1/health/node/:node"): _CHECKS,
    ("GET", "/v1/health/checks/:service"): _CHECKS,
    ("GET", "/v1/health/service/:service"): filtered(_list(_health_row_ok), "node", "service"),
    ("GET", "/v1/health/state/:state"): _CHECKS,
    ("GET", "/v1/stream/health/service/:name"): filtered(_list(_health_row_ok), "node", "service"),
    ("GET", "/v1/stream/catalog/services"): _SERVICE_NAMES,
    ("GET", "/v1/stream/kv/:prefix"): filtered(_KV_RECURSE.rows, "key"),
    ("GET", "/v1/kv/:key"): Need(_kv_read),
    ("PUT", "/v1/kv/:key"): need("key", "write", _param),
    ("DELETE", "/v1/kv/:key"): Need(_kv_delete),
    ("PUT", "/v1/session/create"): need("session", "write", _session_create),
    ("PUT", "/v1/session/destroy/:id"): need("session", "write", _session_node),
    ("PUT", "/v1/session/renew/:id"): need("session", "write", _session_node),
    ("GET", "/v1/session/info/:id"): _SESSIONS,
    ("GET", "/v1/session/node/:node"): _SESSIONS,
    ("GET", "/v1/session/list"): _SESSIONS,
    ("GET", "/v1/query"): filtered(_list(_query_row_ok), "query"),
    ("PUT", "/v1/query"): Need(_query_create),
    ("GET", "/v1/query/:id"): Need(_query_one),
    ("PUT", "/v1/query/:id"): Need(_query_one),
    ("DELETE", "/v1/query/:id"): Need(_query_one),
    ("PUT", "/v1/internal/query/execute-remote"): Need(_token_valid),
    ("PUT", "/v1/txn"): Need(_txn),
    ("PUT", "/v1/event/fire/:name"): need("event", "write", _param),
    ("GET", "/v1/event/list"): filtered(
        _list(lambda a, e: a.allowed("event", e.get("Name", ""), "read")), "event"
    ),
    ("GET", "/v1/status/leader"): OPEN,
    ("GET", "/v1/agent/connect/ca/roots"): OPEN,
    ("GET", "/v1/agent/connect/ca/leaf/:service"): need("service", "write", _param),
    ("GET", "/v1/connect/ca/roots"): OPEN,
    ("GET", "/v1/connect/ca/configuration"): OPERATOR_READ,
    ("PUT", "/v1/agent/connect/authorize"): need("service", "write", _body_field("Target")),
    ("GET", "/v1/connect/intentions"): filtered(_list(_intention_ok), "intention"),
    ("PUT", "/v1/connect/intentions"): need("intention", "write", _body_field("DestinationName")),
    ("GET", "/v1/connect/intentions/exact"): need("intention", "read", _query_name("destination")),
    ("PUT", "/v1/connect/intentions/exact"): need("intention", "write", _query_name("destination")),
    ("DELETE", "/v1/connect/intentions/exact"): need("intention", "write", _query_name("destination")),
    ("GET", "/v1/connect/intentions/match"): Need(_intention_match),
    ("GET", "/v1/connect/intentions/check"): need("intention", "read", _query_name("destination")),
    ("GET", "/v1/connect/intentions/:id"): Need(_intention_by_id),
    ("PUT", "/v1/connect/intentions/:id"): Need(_intention_by_id),
    ("DELETE", "/v1/connect/intentions/:id"): Need(_intention_by_id),
    ("GET", "/v1/catalog/connect/:service"): _connect_rows(_catalog_row_ok),
    ("GET", "/v1/health/connect/:service"): _connect_rows(_health_row_ok),
    ("GET", "/v1/health/ingress/:service"): filtered(_list(_health_row_ok), "node", "service"),
    ("GET", "/v1/catalog/gateway-services/:gateway"): need("service", "read", _param),
    ("GET", "/v1/discovery-chain/:service"): need("service", "read", _param),
    ("PUT", "/v1/connect/ca/configuration"): OPERATOR_WRITE,
    ("GET", "/v1/status/peers"): OPEN,
    ("GET", "/v1/snapshot"): ACL_WRITE,
    ("PUT", "/v1/snapshot"): ACL_WRITE,
    ("GET", "/v1/operator/raft/configuration"): OPERATOR_READ,
    ("GET", "/v1/operator/autopilot/health"): OPERATOR_READ,
    ("GET", "/v1/operator/autopilot/configuration"): OPERATOR_READ,
    ("GET", "/v1/coordinate/datacenters"): OPEN,
    ("GET", "/v1/coordinate/nodes"): filtered(_list(lambda a, c: _node_ok(a, c.get("Node"))), "node"),
    ("GET", "/v1/coordinate/node/:node"): need("node", "read", _param),
    ("PUT", "/v1/coordinate/update"): need("node", "write", _body_field("Node")),
    ("PUT", "/v1/acl/bootstrap"): OPEN,
    ("GET", "/v1/acl/replication"): OPEN,
    ("PUT", "/v1/acl/token"): ACL_WRITE,
    ("GET", "/v1/acl/token/self"): Need(_token_valid),
    ("GET", "/v1/acl/token/:id"): ACL_READ,
    ("PUT", "/v1/acl/token/:id"): ACL_WRITE,
    ("DELETE", "/v1/acl/token/:id"): ACL_WRITE,
    ("GET", "/v1/acl/tokens"): ACL_READ,
    ("PUT", "/v1/acl/policy"): ACL_WRITE,
    ("GET", "/v1/acl/policy/name/:name"): ACL_READ,
    ("GET", "/v1/acl/policy/:id"): ACL_READ,
    ("PUT", "/v1/acl/policy/:id"): ACL_WRITE,
    ("DELETE", "/v1/acl/policy/:id"): ACL_WRITE,
    ("GET", "/v1/acl/policies"): ACL_READ,
    ("PUT", "/v1/acl/role"): ACL_WRITE,
    ("GET", "/v1/acl/role/name/:name"): ACL_READ,
    ("GET", "/v1/acl/role/:id"): ACL_READ,
    ("PUT", "/v1/acl/role/:id"): ACL_WRITE,
    ("DELETE", "/v1/acl/role/:id"): ACL_WRITE,
    ("GET", "/v1/acl/roles"): ACL_READ,
    ("GET", "/v1/internal/wan/exchange"): need("node", "read", _agent_node),
    ("PUT", "/v1/internal/wan/exchange"): OPERATOR_WRITE,
    ("GET", "/v1/internal/acl/replicate"): ACL_WRITE,
    ("GET", "/v1/waypost/virtual-ips"): filtered(
        _list(lambda a, v: _service_ok(a, v.get("Name"))), "service"
    ),
    ("GET", "/v1/waypost/virtual-ip/:name"): need("service", "read", _param),
    ("GET", "/v1/waypost/virtual-ip-instances/:name"): filtered(_list(_health_row_ok), "node", "service"),
}
"""Keyed by (method, route path as ``routes.py`` writes it); POST shares PUT's entry."""

OPEN_ROUTES = frozenset(key for key, n in NEEDS.items() if n is OPEN)
