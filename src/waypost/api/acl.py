"""/v1/acl: bootstrap, tokens, policies and roles, and /v1/agent/token/:type.

Who may call each route is declared in ``acl_rules.py`` and checked at dispatch; what is
left here is Consul's shapes and validation. A missing record answers 403 "ACL not
found" as Consul does, and only after the caller's permission was checked, so a caller
without acl:read cannot learn whether an ID exists.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.acl.resolve import ANONYMOUS_ID, MANAGEMENT_ID, expiry_of
from waypost.acl.rules import RulesError, parse_rules
from waypost.agent.definitions import DefinitionError, canonical_keys, typed
from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import HTTPError, bool_response, decode_json, encode_json, json_response
from waypost.api.http import Request, Response, settled
from waypost.durations import format_duration, parse_duration
from waypost.state import acl_ops, schema
from waypost.state.model import ACLLink, ACLNodeIdentity, ACLPolicy, ACLRole, ACLServiceIdentity, ACLToken

if TYPE_CHECKING:
    from waypost.api.app import ApiApp
    from waypost.api.gate import Gate

ACL_DISABLED = "ACL support disabled"
NOT_FOUND = "ACL not found"
MIN_TTL, MAX_TTL = 60.0, 24 * 3600.0
_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,128}$")
_SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$")
_TOKEN_FIELDS = (
    "AccessorID", "SecretID", "Description", "Policies", "Roles", "ServiceIdentities", "NodeIdentities",
    "Local", "ExpirationTime", "ExpirationTTL", "TemplatedPolicies",
)  # fmt: skip
_IGNORED = (
    "Namespace",
    "Partition",
    "CreateIndex",
    "ModifyIndex",
    "Hash",
    "CreateTime",
    "Legacy",
    "AuthMethod",
)
_AGENT_TOKENS = (
    "default", "agent", "agent_recovery", "agent_master", "replication", "acl_token", "acl_agent_token",
    "acl_agent_master_token", "acl_replication_token", "config_file_service_registration", "dns",
)  # fmt: skip


def _gate(app: ApiApp) -> Gate:
    """ACL routes answer 401 at dispatch while ACLs are off, so here the gate exists."""
    assert app.gate is not None
    return app.gate


def _invalid(what: str, message: str) -> HTTPError:
    return HTTPError(400, f"Invalid {what}: {message}")


def _fresh(links: list[ACLLink] | None, records: dict[str, Any]) -> list[ACLLink] | None:
    """Links as Consul shows them: a deleted policy's or role's dropped, renamed ones renamed."""
    if not links:
        return links
    return [ACLLink(ID=link.ID, Name=records[link.ID].Name) for link in links if link.ID in records]


def token_json(
    app: ApiApp, token: ACLToken, *, stub: bool = False, hide_secret: bool = False
) -> dict[str, Any]:
    """Consul's ACLToken (or its list stub), empty lists and times left out as Go's omitempty."""
    idx = app.state.indexes
    token = msgspec.structs.replace(
        token, Policies=_fresh(token.Policies, idx.acl_policies), Roles=_fresh(token.Roles, idx.acl_roles)
    )
    out: dict[str, Any] = {
        "AccessorID": token.AccessorID,
        "SecretID": token.SecretID,
        "Description": token.Description,
    }
    if hide_secret:
        out["SecretID"] = "<hidden>"
    for name in ("Policies", "Roles", "ServiceIdentities", "NodeIdentities"):
        value = getattr(token, name)
        if value:
            out[name] = msgspec.to_builtins(value)
    out["Local"] = token.Local
    if token.ExpirationTime:
        out["ExpirationTime"] = token.ExpirationTime
    out["CreateTime"] = token.CreateTime
    out["Hash"] = msgspec.to_builtins(token.Hash)
    if stub:
        out["Legacy"] = False
    out["CreateIndex"] = token.CreateIndex
    out["ModifyIndex"] = token.ModifyIndex
    return out


def _named_json(app: ApiApp, record: ACLPolicy | ACLRole, *, stub: bool = False) -> dict[str, Any]:
    if isinstance(record, ACLRole):
        record = msgspec.structs.replace(
            record, Policies=_fresh(record.Policies, app.state.indexes.acl_policies)
        )
    out: dict[str, Any] = {
        k: v
        for k, v in msgspec.structs.asdict(record).items()
        if v not in (None, []) and not (stub and k == "Rules")
    }
    out["Hash"] = msgspec.to_builtins(record.Hash)
    return out


def _links(app: ApiApp, value: Any, field: str, what: str, table: str) -> list[ACLLink] | None:
    """Policy or role references by ID or Name, resolved to both as Consul stores them."""
    if not value:
        return None
    links = typed(value, list[ACLLink], field, f"Invalid {what}")
    records: dict[str, Any] = getattr(app.state.indexes, table)
    by_name = {r.Name: r for r in records.values()}
    out: list[ACLLink] = []
    kind = "Policy" if table == "acl_policies" else "Role"
    for link in links:
        record = records.get(link.ID) if link.ID else by_name.get(link.Name)
        if record is None:
            ref = link.ID or link.Name
            raise _invalid(what, f"{kind} with {'ID' if link.ID else 'Name'} '{ref}' not found")
        if all(o.ID != record.ID for o in out):
            out.append(ACLLink(ID=record.ID, Name=record.Name))
    return out


def _identities(fields: dict[str, Any], what: str) -> tuple[Any, Any]:
    services = typed(
        fields.get("ServiceIdentities") or [], list[ACLServiceIdentity], "ServiceIdentities", what
    )
    for s in services:
        if not _SERVICE_NAME.match(s.ServiceName):
            raise _invalid(what, f"Service identity {s.ServiceName!r} has an invalid name")
    nodes = typed(fields.get("NodeIdentities") or [], list[ACLNodeIdentity], "NodeIdentities", what)
    for n in nodes:
        if not _NAME.match(n.NodeName) or not n.Datacenter:
            raise _invalid(what, f"Node identity {n.NodeName!r} needs a valid NodeName and a Datacenter")
    return services or None, nodes or None


def _link_fields(app: ApiApp, fields: dict[str, Any], what: str) -> dict[str, Any]:
    if fields.get("TemplatedPolicies"):
        raise _invalid(what, "TemplatedPolicies are not supported; use ServiceIdentities or NodeIdentities")
    services, nodes = _identities(fields, what)
    return {
        "Policies": _links(app, fields.get("Policies"), "Policies", what, "acl_policies"),
        "ServiceIdentities": services,
        "NodeIdentities": nodes,
    }


def _expiration(fields: dict[str, Any], existing: ACLToken | None) -> str:
    ttl_text = fields.get("ExpirationTTL")
    when = fields.get("ExpirationTime")
    if existing is not None:
        if (ttl_text or when) and (when or "") != existing.ExpirationTime:
            raise _invalid("Token", "Cannot change expiration time")
        return existing.ExpirationTime
    if ttl_text and when:
        raise _invalid("Token", "Expiration TTL and Expiration Time cannot both be set")
    now = time.time()
    if when:
        text: str = typed(when, str, "ExpirationTime", "Invalid Token")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _invalid("Token", f"ExpirationTime {text!r} is not an RFC 3339 time") from None
        if moment.tzinfo is None:
            raise _invalid("Token", f"ExpirationTime {text!r} has no time zone")
        ttl = moment.timestamp() - now
        if not MIN_TTL <= ttl <= MAX_TTL:
            raise _invalid("Token", "ExpirationTime must be between 1m0s and 24h0m0s in the future")
        return acl_ops.now_rfc3339(moment.timestamp())
    if not ttl_text:
        return ""
    try:
        ttl = parse_duration(typed(ttl_text, str, "ExpirationTTL", "Invalid Token"))
    except ValueError as exc:
        raise _invalid("Token", f"ExpirationTTL: {exc}") from None
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise _invalid(
            "Token",
            f"Token Expiration TTL '{format_duration(ttl)}' should be between 1m0s and 24h0m0s",
        )
    return acl_ops.now_rfc3339(now + ttl)


REPLICATION_STATUS = {
    "Enabled": False,
    "Running": False,
    "SourceDatacenter": "",
    "ReplicationType": "",
    "ReplicatedIndex": 0,
    "ReplicatedRoleIndex": 0,
    "ReplicatedTokenIndex": 0,
    "LastSuccess": "0001-01-01T00:00:00Z",
    "LastError": "0001-01-01T00:00:00Z",
    "LastErrorMessage": "",
}
"""Consul's ACLReplicationStatus in its primary datacenter, where nothing replicates
(and wherever ACLs are off). Consul asks for no token here, so that
health checks can poll it."""


def replication(app: ApiApp, req: Request) -> Response:
    """In a secondary datacenter, how replication from the primary goes (``waypost.wan``)."""
    replicator = app.agent.wan.replicator
    return json_response(REPLICATION_STATUS if replicator is None else replicator.status())


async def bootstrap(app: ApiApp, req: Request) -> Response:
    result = await acl_ops.bootstrap(app.state)
    if isinstance(result, int):
        raise HTTPError(403, f"Permission denied: ACL bootstrap no longer allowed (reset index: {result})")
    return json_response(token_json(app, result))


def _token(app: ApiApp, accessor: str) -> ACLToken:
    token = app.state.indexes.acl_tokens.get(accessor)
    expiry = expiry_of(token) if token is not None else None
    if token is None or (expiry is not None and time.time() >= expiry):
        raise HTTPError(403, NOT_FOUND)
    return token


async def token_create(app: ApiApp, req: Request) -> Response:
    return await _token_write(app, req, None)


async def token_by_id(app: ApiApp, req: Request) -> Response:
    accessor, _, action = req.param.partition("/")
    if action:
        if action != "clone" or req.method != "PUT":
            return Response.text("404 page not found", 404)
        return await _token_clone(app, req, _token(app, accessor))
    if req.method == "GET":
        _token(app, accessor)
        hide = not _gate(app).permits(req, "acl", "write")
        return await settled(
            _live(app, req, _TOKEN_TABLES, lambda: token_json(app, _token(app, accessor), hide_secret=hide))
        )
    if req.method == "DELETE":
        token = _token(app, accessor)
        if token.AccessorID == ANONYMOUS_ID:
            raise _invalid("Token", "Deletion of the builtin anonymous token is not permitted")
        if token.SecretID == _gate(app).secret(req):
            raise _invalid("Token", "Deletion of the request's authorization token is not permitted")
        await acl_ops.delete_record(app.state, schema.ACL_TOKENS, accessor)
        return bool_response(True)
    return await _token_write(app, req, accessor)


def token_self(app: ApiApp, req: Request) -> Response:
    token = _gate(app).token(req)
    if token is None:
        raise HTTPError(403, NOT_FOUND)
    return json_response(token_json(app, token))


async def _token_write(app: ApiApp, req: Request, accessor: str | None) -> Response:
    fields = canonical_keys(decode_json(req), _TOKEN_FIELDS, what="Invalid Token", ignored=_IGNORED)
    if accessor is not None:
        body_id = fields.get("AccessorID")
        if body_id and body_id != accessor:
            raise _invalid("Token", "AccessorID mismatch")
        existing: ACLToken | None = _token(app, accessor)
    else:
        accessor = typed(fields.get("AccessorID") or str(uuid.uuid4()), str, "AccessorID", "Invalid Token")
        if accessor in app.state.indexes.acl_tokens:
            raise _invalid("Token", "AccessorID is already in use")
        existing = None
        _check_uuid(accessor, "AccessorID")
    secret = fields.get("SecretID") or (existing.SecretID if existing else str(uuid.uuid4()))
    if existing is not None and secret != existing.SecretID:
        raise _invalid("Token", "Changing a token's SecretID is not permitted")
    _check_uuid(typed(secret, str, "SecretID", "Invalid Token"), "SecretID")
    links = _link_fields(app, fields, "Token")
    token = ACLToken(
        AccessorID=accessor,
        SecretID=secret,
        Description=typed(fields.get("Description") or "", str, "Description", "Invalid Token"),
        Roles=_links(app, fields.get("Roles"), "Roles", "Token", "acl_roles"),
        Local=typed(fields.get("Local") or False, bool, "Local", "Invalid Token"),
        ExpirationTime=_expiration(fields, existing),
        CreateTime=existing.CreateTime if existing else acl_ops.now_rfc3339(),
        **links,
    )
    token.Hash = acl_ops.content_hash(token)
    return json_response(token_json(app, await _guarded(acl_ops.set_token(app.state, token))))


def _check_uuid(value: str, field: str) -> None:
    if value == ANONYMOUS_ID or value == "anonymous":
        return
    try:
        uuid.UUID(value)
    except ValueError:
        raise _invalid("Token", f"{field} {value!r} is not a UUID") from None


async def _token_clone(app: ApiApp, req: Request, source: ACLToken) -> Response:
    body = decode_json(req, allow_empty=True) or {}
    fields = canonical_keys(body, ("Description",), what="Invalid Token", ignored=_IGNORED)
    clone = msgspec.structs.replace(
        source,
        AccessorID=str(uuid.uuid4()),
        SecretID=str(uuid.uuid4()),
        Description=typed(
            fields.get("Description") or source.Description, str, "Description", "Invalid Token"
        ),
        CreateTime=acl_ops.now_rfc3339(),
    )
    return json_response(token_json(app, await _guarded(acl_ops.set_token(app.state, clone))))


def token_list(app: ApiApp, req: Request) -> Response | asyncio.Future[Response]:
    policy, role = req.arg("policy"), req.arg("role")
    hide = not _gate(app).permits(req, "acl", "write")
    return _live(
        app,
        req,
        _TOKEN_TABLES,
        lambda: [
            token_json(app, t, stub=True, hide_secret=hide)
            for t in sorted(app.state.indexes.acl_tokens.values(), key=lambda t: t.CreateIndex)
            if (not policy or any(policy == p.ID for p in t.Policies or ()))
            and (not role or any(role == r.ID for r in t.Roles or ()))
        ],
    )


_TOKEN_TABLES = (schema.ACL_TOKENS.name, schema.ACL_POLICIES.name, schema.ACL_ROLES.name)
"""A token's answer names its policies and roles, so a rename there changes it too."""


def _live(
    app: ApiApp, req: Request, tables: tuple[str, ...], build: Any
) -> Response | asyncio.Future[Response]:
    """A blocking read, as Consul's ACL reads are. Never from the shared answer cache: whether
    a SecretID shows depends on the caller's token, which the cache key does not hold."""
    idx = app.state.indexes

    def query() -> QueryResult:
        index = max(idx.table_index(t) for t in tables)
        return QueryResult(index, tuple((t,) for t in tables), encode_json(build()))

    return blocking_read(app.state, req, query)


async def _guarded(write: Any) -> Any:
    try:
        return await write
    except acl_ops.ACLConflictError as exc:
        raise HTTPError(400, str(exc)) from None


# -- policies and roles ---------------------------------------------------------------------


def _named(app: ApiApp, table: str, *, by_id: str = "", by_name: str = "") -> Any:
    records: dict[str, Any] = getattr(app.state.indexes, table)
    found = records.get(by_id) if by_id else next((r for r in records.values() if r.Name == by_name), None)
    if found is None:
        raise HTTPError(403, NOT_FOUND)
    return found


def _policy_fields(req: Request) -> dict[str, Any]:
    fields = canonical_keys(
        decode_json(req),
        ("ID", "Name", "Description", "Rules", "Datacenters"),
        what="Invalid Policy",
        ignored=_IGNORED,
    )
    name = typed(fields.get("Name") or "", str, "Name", "Invalid Policy")
    if not name:
        raise _invalid("Policy", "no Name is set")
    if not _NAME.match(name):
        raise _invalid("Policy", "invalid Name. Only alphanumeric characters, '-' and '_' are allowed")
    rules = typed(fields.get("Rules") or "", str, "Rules", "Invalid Policy")
    try:
        parse_rules(rules)
    except RulesError as exc:
        raise HTTPError(400, f"Invalid Policy: failed to parse rules: {exc}") from None
    fields["Name"], fields["Rules"] = name, rules
    return fields


async def policy_create(app: ApiApp, req: Request) -> Response:
    fields = _policy_fields(req)
    if fields.get("ID"):
        raise _invalid("Policy", "ID must not be set when creating a policy")
    return await _policy_write(app, str(uuid.uuid4()), fields)


async def _policy_write(app: ApiApp, policy_id: str, fields: dict[str, Any]) -> Response:
    if policy_id == MANAGEMENT_ID and fields["Rules"] != app.state.indexes.acl_policies[policy_id].Rules:
        raise _invalid(
            "Policy", "Changing the Rules for the builtin global-management policy is not permitted"
        )
    policy = ACLPolicy(
        ID=policy_id,
        Name=fields["Name"],
        Description=typed(fields.get("Description") or "", str, "Description", "Invalid Policy"),
        Rules=fields["Rules"],
        Datacenters=typed(fields.get("Datacenters"), list[str] | None, "Datacenters", "Invalid Policy"),
    )
    policy.Hash = acl_ops.content_hash(policy)
    return json_response(_named_json(app, await _guarded(acl_ops.set_policy(app.state, policy))))


async def policy_by_id(app: ApiApp, req: Request) -> Response:
    policy = _named(app, "acl_policies", by_id=req.param)
    if req.method == "GET":
        return await settled(
            _live(
                app,
                req,
                _POLICY_TABLES,
                lambda: _named_json(app, _named(app, "acl_policies", by_id=req.param)),
            )
        )
    if req.method == "DELETE":
        if policy.ID == MANAGEMENT_ID:
            raise _invalid("Policy", "Deletion of the builtin global-management policy is not permitted")
        await acl_ops.delete_record(app.state, schema.ACL_POLICIES, policy.ID)
        return bool_response(True)
    fields = _policy_fields(req)
    if fields.get("ID") and fields["ID"] != policy.ID:
        raise _invalid("Policy", "ID mismatch")
    return await _policy_write(app, policy.ID, fields)


def policy_by_name(app: ApiApp, req: Request) -> Response:
    return json_response(_named_json(app, _named(app, "acl_policies", by_name=req.param)))


_POLICY_TABLES = (schema.ACL_POLICIES.name,)


def policy_list(app: ApiApp, req: Request) -> Response | asyncio.Future[Response]:
    return _live(
        app,
        req,
        _POLICY_TABLES,
        lambda: [
            _named_json(app, p, stub=True)
            for p in sorted(app.state.indexes.acl_policies.values(), key=lambda p: p.CreateIndex)
        ],
    )


def _role_fields(app: ApiApp, req: Request) -> dict[str, Any]:
    fields = canonical_keys(
        decode_json(req),
        ("ID", "Name", "Description", "Policies", "ServiceIdentities", "NodeIdentities", "TemplatedPolicies"),
        what="Invalid Role",
        ignored=_IGNORED,
    )
    name = typed(fields.get("Name") or "", str, "Name", "Invalid Role")
    if not name:
        raise _invalid("Role", "no Name is set")
    if not re.match(r"^[A-Za-z0-9\-_]{1,256}$", name):
        raise _invalid("Role", "invalid Name. Only alphanumeric characters, '-' and '_' are allowed")
    return {
        "ID": fields.get("ID"),
        "Name": name,
        "Description": fields.get("Description") or "",
        **_link_fields(app, fields, "Role"),
    }


async def _role_write(app: ApiApp, role_id: str, fields: dict[str, Any]) -> Response:
    fields.pop("ID", None)
    description = typed(fields.pop("Description"), str, "Description", "Invalid Role")
    role = ACLRole(ID=role_id, Description=description, **fields)
    role.Hash = acl_ops.content_hash(role)
    return json_response(_named_json(app, await _guarded(acl_ops.set_role(app.state, role))))


async def role_create(app: ApiApp, req: Request) -> Response:
    fields = _role_fields(app, req)
    if fields.get("ID"):
        raise _invalid("Role", "ID must not be set when creating a role")
    return await _role_write(app, str(uuid.uuid4()), fields)


async def role_by_id(app: ApiApp, req: Request) -> Response:
    role = _named(app, "acl_roles", by_id=req.param)
    if req.method == "GET":
        return json_response(_named_json(app, role))
    if req.method == "DELETE":
        await acl_ops.delete_record(app.state, schema.ACL_ROLES, role.ID)
        return bool_response(True)
    fields = _role_fields(app, req)
    if fields.get("ID") and fields["ID"] != role.ID:
        raise _invalid("Role", "ID mismatch")
    return await _role_write(app, role.ID, fields)


def role_by_name(app: ApiApp, req: Request) -> Response:
    return json_response(_named_json(app, _named(app, "acl_roles", by_name=req.param)))


def role_list(app: ApiApp, req: Request) -> Response:
    rows = sorted(app.state.indexes.acl_roles.values(), key=lambda r: r.CreateIndex)
    return json_response([_named_json(app, r) for r in rows])


def agent_token(app: ApiApp, req: Request) -> Response:
    """Sets one of this agent's tokens for its lifetime (Consul's ``enable_token_persistence``
    is not kept across restarts here)."""
    kind = req.param
    if kind not in _AGENT_TOKENS:
        raise HTTPError(404, f'Token "{kind}" is unknown')
    fields = canonical_keys(decode_json(req), ("Token",), what="Request decode failed", ignored=())
    try:
        secret = typed(fields.get("Token") or "", str, "Token", "Request decode failed")
    except DefinitionError as exc:
        raise HTTPError(400, str(exc)) from None
    try:
        _gate(app).tokens.set(_canonical_kind(kind), secret)
    except OSError as exc:
        raise HTTPError(500, f"Failed to persist the token: {exc.strerror}") from None
    return Response()


def _canonical_kind(kind: str) -> str:
    renamed = {
        "acl_token": "default", "acl_agent_token": "agent", "agent_master": "agent_recovery",
        "acl_agent_master_token": "agent_recovery", "acl_replication_token": "replication",
    }  # fmt: skip
    return renamed.get(kind, kind)
