"""/v1/catalog: the cluster-wide view of nodes and services."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from waypost.agent.definitions import canonical_keys, parse_service
from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import (
    HTTPError,
    apply_filter,
    bool_response,
    decode_json,
    encode_json,
    node_meta_args,
)
from waypost.api.http import Request, Response
from waypost.api.reads import indexed_read, instances_read
from waypost.state import catalog_ops, queries
from waypost.state.model import HealthCheck, Node, NodeService

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["service_entry"]


def service_entry(inst: queries.ServiceInstance) -> dict[str, Any]:
    """Consul's flattened ServiceNode (catalog/service output)."""
    n, s = inst.node, inst.service
    return {
        "ID": n.ID,
        "Node": n.Node,
        "Address": n.Address,
        "Datacenter": n.Datacenter,
        "TaggedAddresses": n.TaggedAddresses,
        "NodeMeta": n.Meta,
        "ServiceKind": s.Kind,
        "ServiceID": s.ID,
        "ServiceName": s.Service,
        "ServiceTags": s.Tags,
        "ServiceAddress": s.Address,
        "ServiceTaggedAddresses": s.TaggedAddresses,
        "ServiceWeights": s.Weights,
        "ServiceMeta": s.Meta,
        "ServicePort": s.Port,
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": s.EnableTagOverride,
        "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "ServiceConnect": {},
        "CreateIndex": s.CreateIndex,
        "ModifyIndex": s.ModifyIndex,
    }


def datacenters(app: ApiApp, req: Request) -> Response:
    return Response(encode_json([app.agent.datacenter]))


def nodes(app: ApiApp, req: Request) -> Response | Any:
    meta = node_meta_args(req)
    return indexed_read(app, req, lambda idx: queries.catalog_nodes(idx, meta))


def services(app: ApiApp, req: Request) -> Response | Any:
    meta = node_meta_args(req)
    return indexed_read(app, req, lambda idx: queries.catalog_services(idx, meta), filtered=False)


def service(app: ApiApp, req: Request) -> Response | Any:
    return instances_read(app, req, service_entry)


def _node_read(app: ApiApp, req: Request, shape: Callable[[Node, list[NodeService]], Any]) -> Response | Any:
    """``catalog/node`` and ``catalog/node-services``: one node's services in two shapes;
    ``null`` for an unknown node, as Consul answers."""
    name = req.param

    def query() -> QueryResult:
        idx = app.state.indexes
        found = idx.nodes.get(name)
        index = idx.topics.index(("node", name)) or idx.table_index("nodes")
        if found is None:
            return QueryResult(index, (("node", name),), b"null")
        listed = apply_filter(req, sorted(idx.services.get(name, {}).values(), key=lambda s: s.ID))
        return QueryResult(index, (("node", name),), encode_json(shape(found, listed)))

    return blocking_read(app.state, req, query, cache=app.cache)


def node(app: ApiApp, req: Request) -> Response | Any:
    return _node_read(app, req, lambda n, svcs: {"Node": n, "Services": {s.ID: s for s in svcs}})


def node_services(app: ApiApp, req: Request) -> Response | Any:
    return _node_read(app, req, lambda n, svcs: {"Node": n, "Services": svcs})


_REGISTER_FIELDS = (
    "ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta", "Service", "Check", "Checks",
    "SkipNodeUpdate",
)  # fmt: skip
_CHECK_FIELDS = (
    "Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID", "ServiceName", "ServiceTags", "Type",
    "Definition", "Interval", "Timeout",
)  # fmt: skip


def _catalog_check(body: Any, node_name: str) -> HealthCheck:
    fields = canonical_keys(
        body,
        _CHECK_FIELDS,
        what="Check",
        ignored=("Namespace", "Partition", "CreateIndex", "ModifyIndex", "ExposedPort"),
    )
    if not fields.get("CheckID") and not fields.get("Name"):
        raise HTTPError(400, "Missing check ID")
    status = fields.get("Status") or "critical"
    if status not in ("passing", "warning", "critical"):
        raise HTTPError(400, f'Invalid check status: "{status}"')
    return HealthCheck(
        Node=node_name,
        CheckID=str(fields.get("CheckID") or fields.get("Name")),
        Name=str(fields.get("Name") or fields.get("CheckID")),
        Status=status,
        Notes=str(fields.get("Notes") or ""),
        Output=str(fields.get("Output") or ""),
        ServiceID=str(fields.get("ServiceID") or ""),
        Type=str(fields.get("Type") or ""),
        Definition=fields.get("Definition") or {},
    )


async def register(app: ApiApp, req: Request) -> Response:
    fields = canonical_keys(
        decode_json(req),
        _REGISTER_FIELDS,
        what="Request",
        ignored=("Namespace", "Partition", "Locality", "Token"),
    )
    name = fields.get("Node")
    if not name:
        raise HTTPError(400, "Missing node name")
    if not fields.get("Address"):
        raise HTTPError(400, "Missing node address")
    dc = fields.get("Datacenter") or app.agent.datacenter
    if dc != app.agent.datacenter:
        raise HTTPError(500, f"No path to datacenter {dc!r}")
    node_rec = Node(
        ID=str(fields.get("ID") or ""),
        Node=str(name),
        Address=str(fields["Address"]),
        Datacenter=dc,
        TaggedAddresses=dict(fields.get("TaggedAddresses") or {}),
        Meta=dict(fields.get("NodeMeta") or {}),
    )
    svcs = []
    if fields.get("Service"):
        svcs.append(parse_service(fields["Service"], dc).service)
    checks = [_catalog_check(c, node_rec.Node) for c in ([fields["Check"]] if fields.get("Check") else [])]
    checks += [_catalog_check(c, node_rec.Node) for c in fields.get("Checks") or []]
    await catalog_ops.register(
        app.state, node_rec, svcs, checks, skip_node_update=bool(fields.get("SkipNodeUpdate"))
    )
    return bool_response(True)


async def deregister(app: ApiApp, req: Request) -> Response:
    fields = canonical_keys(
        decode_json(req),
        ("Node", "ServiceID", "CheckID", "Datacenter"),
        what="Request",
        ignored=("Namespace", "Partition", "Token"),
    )
    if not fields.get("Node"):
        raise HTTPError(400, "Missing node name")
    await catalog_ops.deregister(
        app.state, str(fields["Node"]), service_id=fields.get("ServiceID"), check_id=fields.get("CheckID")
    )
    return bool_response(True)
