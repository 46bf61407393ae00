"""/v1/txn: KV, node, service, check and session operations applied atomically, or none.

Every operation is decoded into a typed record before anything runs: a malformed one is
refused whole with 400 naming its position. Consul's own checks then run (409 with one
error per failed operation), and the operations are planned against the indexes and
written as one guarded store transaction (see ``txn_plan``). A transaction without a
write is answered from the indexes, as Consul answers it without Raft.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from waypost.agent.definitions import DefinitionError, canonical_keys, parse_service, typed
from waypost.api import shapes
from waypost.api.catalog import catalog_check, catalog_node
from waypost.api.common import HTTPError, decode_json, json_response, parse_consistency
from waypost.api.http import Request, Response
from waypost.api.kv import kv_pair
from waypost.api.txn_ops import (
    CheckOp,
    KVOp,
    NodeOp,
    ServiceOp,
    SessionOp,
    TxnOp,
    is_write,
    precheck,
)
from waypost.api.txn_plan import Planner
from waypost.gostrconv import go_quote
from waypost.state.model import NodeService
from waypost.state.state import TxnPlan
from waypost.store.base import LeaseNotFoundError
from waypost.store.wire import MAX_TXN_OPS

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

MAX_OPS = 128
"""Consul's limit on operations per transaction (64 before Consul 1.14)."""

_TXN_LEN_DOC = "https://developer.hashicorp.com/consul/docs/agent/config/config-files#txn_max_req_len"
_KINDS = ("KV", "Node", "Service", "Check", "Session")
_KV_FIELDS = ("Verb", "Key", "Value", "Flags", "Index", "Session")
_NODE_FIELDS = ("ID", "Node", "Address", "Datacenter", "TaggedAddresses", "Meta", "ModifyIndex")
_ENTERPRISE = ("Namespace", "Partition")

_UINT64 = Annotated[int, msgspec.Meta(ge=0)]
"""Go's uint64: decode_json already refuses numbers past its range."""


class _RolledBack(Exception):
    """Some operation failed while planning: nothing is written, each failure is reported."""


async def txn(app: ApiApp, req: Request) -> Response:
    ops = decode_operations(app, req)
    failed = precheck(ops, app.agent.lock_delays.active)
    if failed:
        return _conflict(failed)
    if not any(is_write(op) for op in ops):
        return await _read(app, req, ops)
    planner: Planner | None = None

    def plan() -> TxnPlan | None:
        nonlocal planner
        planner = Planner(app.state.indexes)
        planner.run(ops)
        if planner.errors:
            raise _RolledBack
        planned = planner.store_plan()
        size = max(len(planned[0]), len(planned[1])) if planned is not None else 0
        if size > MAX_TXN_OPS:
            raise HTTPError(413, f"Transaction touches too many records ({size} > {MAX_TXN_OPS})")
        return planned

    try:
        result = await app.state.write(plan)
    except _RolledBack:
        assert planner is not None
        return _conflict(planner.errors)
    assert planner is not None
    planner.stamp(result.revision if result is not None else app.state.indexes.revision)
    for lease in planner.leases:
        with contextlib.suppress(LeaseNotFoundError):
            await app.state.store.lease_revoke(lease)
    for key, delay in planner.freed:
        app.agent.lock_delays.set(key, delay)
    return json_response({"Results": _results(planner), "Errors": None})


async def _read(app: ApiApp, req: Request, ops: list[TxnOp]) -> Response:
    """Consul's read-only fast path: any consistency mode, no blocking, and only the
    leader and last-contact headers."""
    if parse_consistency(req) == "consistent":
        await app.state.catch_up()
    planner = Planner(app.state.indexes)
    planner.run(ops)
    headers = [
        ("X-Consul-Knownleader", "true" if app.state.indexes.leader is not None else "false"),
        ("X-Consul-Lastcontact", str(app.state.last_contact_ms())),
    ]
    if planner.errors:
        return _conflict(planner.errors, headers)
    return json_response({"Results": _results(planner), "Errors": None}, headers=headers)


def _conflict(errors: list[tuple[int, str]], headers: list[tuple[str, str]] | None = None) -> Response:
    body = {"Results": None, "Errors": [{"OpIndex": i, "What": what} for i, what in errors]}
    return json_response(body, 409, headers=headers)


def _results(planner: Planner) -> list[dict[str, Any]]:
    """Each record in the shape Consul's reads give it; KV writes answer without the
    value, to save space, and KV reads with it."""
    out: list[dict[str, Any]] = []
    for kind, record, with_value in planner.results:
        shaped: Any = record
        if kind == "KV":
            shaped = kv_pair(record)
            if not with_value:
                shaped.Value = None
        elif kind == "Node":
            shaped = shapes.node(record)
        elif kind == "Service":
            shaped = shapes.node_service(record)
        out.append({kind: shaped})
    return out


# -- decoding ----------------------------------------------------------------------------


def decode_operations(app: ApiApp, req: Request) -> list[TxnOp]:
    """The body as the typed operations the planner runs; the ACL check reads these same ones."""
    limits = app.agent.config.limits
    max_len = max(limits.txn_max_req_len, limits.kv_max_value_size)
    if len(req.body) > max_len:
        raise HTTPError(
            413,
            f"Request body({len(req.body)} bytes) too large, max size: {max_len} bytes. See {_TXN_LEN_DOC}.",
        )
    body = decode_json(req)
    if not isinstance(body, list):
        raise HTTPError(400, "Failed to parse body: expected a JSON array of operations")
    if len(body) > MAX_OPS:
        raise HTTPError(413, f"Transaction contains too many operations ({len(body)} > {MAX_OPS})")
    ops = []
    for i, raw in enumerate(body):
        try:
            op = _operation(raw, app.agent.datacenter)
        except DefinitionError as exc:
            raise HTTPError(400, f"Failed to parse body: operation {i}: {exc}") from None
        except HTTPError as exc:
            raise HTTPError(exc.status, f"Failed to parse body: operation {i}: {exc.message}") from None
        if isinstance(op, KVOp) and len(op.value) > limits.kv_max_value_size:
            sizes = f"{len(op.value)} > {limits.kv_max_value_size} bytes"
            raise HTTPError(413, f"Value for key {go_quote(op.key)} is too large ({sizes})")
        ops.append(op)
    return ops


def _operation(raw: Any, datacenter: str) -> TxnOp:
    """Go's client sends every kind with the unused ones null, so null counts as absent."""
    given = {k: v for k, v in canonical_keys(raw, _KINDS, what="operation").items() if v is not None}
    if len(given) != 1:
        raise DefinitionError("exactly one of KV, Node, Service, Check or Session must be given")
    ((kind, body),) = given.items()
    if kind == "KV":
        return _kv(body)
    fields = canonical_keys(body, ("Verb", kind, "Node") if kind == "Service" else ("Verb", kind), what=kind)
    verb: str = _get(fields, "Verb", str, "", kind)
    inner = fields.get(kind)
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise DefinitionError(f"{kind}: {kind} must be a JSON object")
    index: int = _get(_members(inner, "ModifyIndex"), "ModifyIndex", _UINT64, 0, kind)
    if kind == "Node":
        node_fields = canonical_keys(
            inner, _NODE_FIELDS, what="Node", ignored=("CreateIndex", "PeerName", "Locality", *_ENTERPRISE)
        )
        return NodeOp(verb, catalog_node(node_fields, "Meta", datacenter), index)
    if kind == "Service":
        node: str = _get(fields, "Node", str, "", kind)
        return ServiceOp(verb, node, _service(inner, datacenter), index)
    if kind == "Check":
        node = _get(_members(inner, "Node"), "Node", str, "", kind)
        return CheckOp(verb, catalog_check(inner, node), index)
    return SessionOp(verb, _get(_members(inner, "ID"), "ID", str, "", kind))


def _kv(body: Any) -> KVOp:
    fields = canonical_keys(body, _KV_FIELDS, what="KV", ignored=_ENTERPRISE)
    return KVOp(
        verb=_get(fields, "Verb", str, "", "KV"),
        key=_get(fields, "Key", str, "", "KV"),
        value=_value(fields.get("Value")),
        flags=_get(fields, "Flags", _UINT64, 0, "KV"),
        index=_get(fields, "Index", _UINT64, 0, "KV"),
        session=_get(fields, "Session", str, "", "KV"),
    )


def _service(body: dict[str, Any], datacenter: str) -> NodeService:
    """Without a name only the ID is read: a get needs no more, and ``precheck`` refuses
    every other verb without a name, as Consul does. Weights are stored as given, as
    catalog register stores them."""
    if not (_members(body, "Service").get("Service") or _members(body, "Name").get("Name")):
        return NodeService(ID=_get(_members(body, "ID"), "ID", str, "", "Service"), Service="")
    definition = parse_service(body, datacenter, catalog=True)
    if definition.checks:
        raise DefinitionError("Service: checks are given as Check operations")
    return definition.service


def _members(body: dict[str, Any], name: str) -> dict[str, Any]:
    """``{name: value}`` for the member Go's case-insensitive decoding reads as ``name``,
    ignoring the rest of ``body``; empty when it is absent or null."""
    found = canonical_keys(body, (name,), what=name, ignored=[str(k) for k in body])
    return {k: v for k, v in found.items() if v is not None}


def _get(fields: dict[str, Any], name: str, typ: Any, default: Any, what: str) -> Any:
    """A member as ``typ``; absent or null is ``default``, as Go leaves a zero value."""
    value = fields.get(name)
    return default if value is None else typed(value, typ, name, what)


def _value(raw: Any) -> bytes:
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise DefinitionError("KV: Value: expected a base64 string")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise DefinitionError("KV: Value: illegal base64 data") from None
