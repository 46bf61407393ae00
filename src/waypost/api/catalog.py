"""/v1/catalog: the cluster-wide view of nodes and services."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from waypost.agent.definitions import canonical_keys, parse_meta, parse_service, typed
from waypost.api import shapes
from waypost.api.common import (
    NO_DC_PATH,
    HTTPError,
    bool_response,
    decode_json,
    encode_json,
    filter_predicate,
    node_meta_args,
)
from waypost.api.http import Request, Response
from waypost.api.reads import indexed_read, instances_read, node_read
from waypost.api.selectors import NODE, NODE_SERVICE, SERVICE_NODE
from waypost.state import catalog_ops, queries
from waypost.state.indexes import Indexes
from waypost.state.model import HealthCheck, Node, NodeService

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = [
    "Deregistration",
    "Registration",
    "catalog_check",
    "catalog_node",
    "deregistration",
    "registration",
]


def datacenters(app: ApiApp, req: Request) -> Response | Any:
    """This datacenter first, then the others nearest first; a client agent asks a server,
    which holds the WAN pool, as Consul's client agents do."""
    if not app.agent.config.server:
        return app.agent.wan.ask_server(req)
    return Response(encode_json(app.agent.wan.datacenters()))


def nodes(app: ApiApp, req: Request) -> Response | Any:
    meta = node_meta_args(req)

    def fetch(idx: Indexes) -> queries.Read:
        index, topics, found = queries.catalog_nodes(idx, meta)
        return index, topics, [shapes.node(n) for n in found]

    return indexed_read(app, req, fetch, NODE)


def services(app: ApiApp, req: Request) -> Response | Any:
    """Consul filters the ServiceNode rows (``catalog/service``'s shape) before it groups
    them into names and tags, so a service appears when any instance matches."""
    meta = node_meta_args(req)
    keep = filter_predicate(req, SERVICE_NODE)

    def row_kept(node: Node, svc: NodeService) -> bool:
        return keep is None or keep(shapes.service_node(queries.ServiceInstance(node, svc, [])))

    return indexed_read(
        app, req, lambda idx: queries.catalog_services(idx, meta, row_kept if keep else None), None
    )


def service(app: ApiApp, req: Request) -> Response | Any:
    return instances_read(app, req, shapes.service_node, SERVICE_NODE)


def _node_read(
    app: ApiApp, req: Request, shape: Callable[[Node, list[NodeService]], Any], missing: bytes
) -> Response | Any:
    """``catalog/node`` and ``catalog/node-services``: one node's services in two shapes,
    ``?filter`` applied to the services."""
    keep = filter_predicate(req, NODE_SERVICE)

    def answer(idx: Indexes, found: Node) -> Any:
        listed = sorted(idx.services.get(found.Node, {}).values(), key=lambda s: s.ID)
        return shape(found, listed if keep is None else [s for s in listed if keep(s)])

    return node_read(app, req, answer, missing)


def node(app: ApiApp, req: Request) -> Response | Any:
    return _node_read(
        app,
        req,
        lambda n, svcs: shapes.NodeServices(shapes.node(n), {s.ID: shapes.node_service(s) for s in svcs}),
        b"null",
    )


def node_services(app: ApiApp, req: Request) -> Response | Any:
    """A node without services has a nil list (``null``), unless a ``?filter`` ran: Consul's
    filter always builds a new, possibly empty, list."""
    filtered = bool(req.arg("filter"))
    return _node_read(
        app,
        req,
        lambda n, svcs: shapes.NodeServiceList(
            shapes.node(n), [shapes.node_service(s) for s in svcs] if svcs or filtered else None
        ),
        encode_json(shapes.NodeServiceList(None, None)),
    )


_REGISTER_FIELDS = (
    "ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta", "Service", "Check", "Checks",
    "SkipNodeUpdate",
)  # fmt: skip
_CHECK_FIELDS = (
    "Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID", "ServiceName", "ServiceTags", "Type",
    "Definition", "Interval", "Timeout",
)  # fmt: skip


_NODE = "Invalid node"
_CHECK = "Invalid check"


def catalog_node(fields: dict[str, Any], meta_field: str, datacenter: str) -> Node:
    """A node as catalog writes give it, typed as the store keeps it. Catalog register
    spells its metadata ``NodeMeta`` and a transaction's Node op ``Meta``; each caller
    checks the fields it requires."""
    return Node(
        ID=typed(fields.get("ID") or "", str, "ID", _NODE),
        Node=typed(fields.get("Node") or "", str, "Node", _NODE),
        Address=typed(fields.get("Address") or "", str, "Address", _NODE),
        Datacenter=typed(fields.get("Datacenter") or datacenter, str, "Datacenter", _NODE),
        TaggedAddresses=typed(fields.get("TaggedAddresses") or {}, dict[str, str], "TaggedAddresses", _NODE),
        Meta=parse_meta(fields.get(meta_field), meta_field, _NODE),
    )


def catalog_check(body: Any, node_name: str, *, same_node: bool = False) -> HealthCheck:
    """A check as catalog register and transactions give it; ``node_name`` is the node
    it is stored on. ``same_node``: a register request's check may name no other node
    (Consul's rule, so that the token's grants are vetted against that one node)."""
    fields = canonical_keys(
        body,
        _CHECK_FIELDS,
        what="Check",
        ignored=("Namespace", "Partition", "PeerName", "CreateIndex", "ModifyIndex", "ExposedPort"),
    )
    text = {
        k: typed(v if v is not None else "", str, k, _CHECK) for k, v in fields.items() if k in _CHECK_TEXT
    }
    if not text.get("CheckID") and not text.get("Name"):
        raise HTTPError(400, "Missing check ID")
    named = text.get("Node", "")
    if same_node and named and named.lower() != node_name.lower():
        check_id = text.get("CheckID") or text["Name"]
        raise HTTPError(
            400, f"Node '{named}' for check '{check_id}' doesn't match register request node '{node_name}'"
        )
    status = text.get("Status") or "critical"
    if status not in ("passing", "warning", "critical"):
        raise HTTPError(400, f'Invalid check status: "{status}"')
    return HealthCheck(
        Node=node_name,
        CheckID=text.get("CheckID") or text["Name"],
        Name=text.get("Name") or text["CheckID"],
        Status=status,
        Notes=text.get("Notes", ""),
        Output=text.get("Output", ""),
        ServiceID=text.get("ServiceID", ""),
        Type=text.get("Type", ""),
        Definition=typed(fields.get("Definition") or {}, dict[str, Any], "Definition", _CHECK),
    )


_CHECK_TEXT = frozenset(("Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID", "Type"))


class Registration(NamedTuple):
    """A ``/v1/catalog/register`` body as the handler stores it; the ACL check vets this same one."""

    node: Node
    services: list[NodeService]
    checks: list[HealthCheck]
    skip_node_update: bool


def registration(app: ApiApp, req: Request) -> Registration:
    fields = canonical_keys(
        decode_json(req),
        _REGISTER_FIELDS,
        what="Request",
        ignored=("Namespace", "Partition", "Locality", "Token"),
    )
    node_rec = catalog_node(fields, "NodeMeta", app.agent.datacenter)
    if not node_rec.Node:
        raise HTTPError(400, "Missing node name")
    if "/" in node_rec.Node:
        raise HTTPError(400, f'Invalid node name "{node_rec.Node}": "/" is not allowed')
    if not node_rec.Address:
        raise HTTPError(400, "Missing node address")
    dc = node_rec.Datacenter
    if dc != app.agent.datacenter:
        raise HTTPError(500, NO_DC_PATH)
    svcs = []
    if fields.get("Service"):
        svcs.append(parse_service(fields["Service"], dc, catalog=True).service)
    more = fields.get("Checks") or []
    if not isinstance(more, list):
        raise HTTPError(400, "Invalid check: Checks must be a list")
    given = [fields["Check"]] if fields.get("Check") else []
    checks = [catalog_check(c, node_rec.Node, same_node=True) for c in [*given, *more]]
    skip = typed(fields.get("SkipNodeUpdate") or False, bool, "SkipNodeUpdate", _NODE)
    return Registration(node_rec, svcs, checks, skip)


async def register(app: ApiApp, req: Request) -> Response:
    reg = registration(app, req)
    await catalog_ops.register(
        app.state, reg.node, reg.services, reg.checks, skip_node_update=reg.skip_node_update
    )
    return bool_response(True)


class Deregistration(NamedTuple):
    """What a ``/v1/catalog/deregister`` body removes. Consul reads ServiceID before CheckID
    and the node last, and ignores the rest, so a CheckID beside a ServiceID does nothing."""

    node: str
    service_id: str | None
    check_id: str | None


def deregistration(req: Request) -> Deregistration:
    fields = canonical_keys(
        decode_json(req),
        ("Node", "ServiceID", "CheckID", "Datacenter"),
        what="Request",
        ignored=("Namespace", "Partition", "Token", "Address", "PeerName", "Locality"),
    )
    text = {k: typed(v or "", str, k, "Invalid request") for k, v in fields.items()}
    if not text.get("Node"):
        raise HTTPError(400, "Missing node name")
    service_id = text.get("ServiceID") or None
    return Deregistration(text["Node"], service_id, None if service_id else text.get("CheckID") or None)


async def deregister(app: ApiApp, req: Request) -> Response:
    target = deregistration(req)
    await catalog_ops.deregister(
        app.state, target.node, service_id=target.service_id, check_id=target.check_id
    )
    return bool_response(True)
