"""Consul's ``/v1/internal/ui`` reads: each page of the web UI gets what it shows in one
blocking query (a services summary, nodes with their services and checks), rather than
one query per row. Shapes as Consul's ui_endpoint.go sends them; with no service mesh
here, the Connect fields are always false or empty."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from waypost.api import shapes
from waypost.api.http import Request, Response
from waypost.api.reads import indexed_read, node_read
from waypost.state import model, queries
from waypost.state.indexes import Indexes

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

EXTERNAL_SOURCE = "external-source"
"""The service meta key naming the tool that registered a service (Consul's MetaExternalSource)."""

_TOPICS = (("services",), ("nodes",), ("checks",))


class ServiceListingSummary(msgspec.Struct, gc=False):
    Kind: str | shapes.Omit
    Name: str
    Datacenter: str
    Tags: list[str] | None
    Nodes: list[str]
    ExternalSources: list[str] | None
    InstanceCount: int
    ChecksPassing: int
    ChecksWarning: int
    ChecksCritical: int
    GatewayConfig: dict[str, Any]
    TransparentProxy: bool
    ConnectNative: bool
    ConnectedWithProxy: bool
    ConnectedWithGateway: bool


class NodeInfo(msgspec.Struct, gc=False):
    ID: str
    Node: str
    Address: str
    TaggedAddresses: dict[str, str] | None
    Meta: dict[str, str] | None
    Services: list[shapes.NodeService]
    Checks: list[model.HealthCheck]


def _catalog_index(idx: Indexes) -> int:
    return max(idx.table_index("services"), idx.table_index("nodes"), idx.table_index("checks"))


def _checks_by_node(idx: Indexes) -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """Each node's check statuses: its node-level ones, and by service ID the rest, in one
    pass (per instance, scanning every check on its node again would be quadratic)."""
    out: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
    for node_name, checks in idx.checks.items():
        node_level: list[str] = []
        per_service: dict[str, list[str]] = {}
        for check in checks.values():
            if check.ServiceID:
                per_service.setdefault(check.ServiceID, []).append(check.Status)
            else:
                node_level.append(check.Status)
        out[node_name] = (node_level, per_service)
    return out


def _summaries(idx: Indexes) -> list[ServiceListingSummary]:
    """Each service's instances counted and its checks (the instances' own and their nodes')
    tallied once per node and check, as Consul's summarizeServices does."""
    by_node = _checks_by_node(idx)
    no_checks: tuple[list[str], dict[str, list[str]]] = ([], {})
    out = []
    for name, instances in sorted(idx.instances.items()):
        nodes: dict[str, None] = {}
        tags: set[str] = set()
        sources: dict[str, None] = {}
        states: list[str] = []
        kind, dc, count = "", "", 0
        for (node_name, sid), svc in instances.items():
            node = idx.nodes.get(node_name)
            if node is None:
                continue
            count += 1
            node_level, per_service = by_node.get(node_name, no_checks)
            if node_name not in nodes:
                nodes[node_name] = None
                states.extend(node_level)
            states.extend(per_service.get(sid, ()))
            kind, dc = svc.Kind, node.Datacenter
            tags.update(svc.Tags)
            if svc.Meta.get(EXTERNAL_SOURCE):
                sources[svc.Meta[EXTERNAL_SOURCE]] = None
        if not count:
            continue
        summary = ServiceListingSummary(
            kind or msgspec.UNSET, name, dc, sorted(tags) or None, sorted(nodes), list(sources) or None,
            count, states.count("passing"), states.count("warning"), states.count("critical"), {},
            False, False, False, False,
        )  # fmt: skip
        out.append(summary)
    return out


def services(app: ApiApp, req: Request) -> Response | Any:
    def fetch(idx: Indexes) -> queries.Read:
        return _catalog_index(idx), _TOPICS, _summaries(idx)

    return indexed_read(app, req, fetch, None)


def _node_info(idx: Indexes, node: model.Node) -> NodeInfo:
    listed = sorted(idx.services.get(node.Node, {}).values(), key=lambda s: s.ID)
    checks = sorted(idx.checks.get(node.Node, {}).values(), key=lambda c: c.CheckID)
    return NodeInfo(
        node.ID, node.Node, node.Address, node.TaggedAddresses or None, node.Meta or None,
        [shapes.node_service(s) for s in listed], checks,
    )  # fmt: skip


def nodes(app: ApiApp, req: Request) -> Response | Any:
    def fetch(idx: Indexes) -> queries.Read:
        return _catalog_index(idx), _TOPICS, [_node_info(idx, n) for _, n in sorted(idx.nodes.items())]

    return indexed_read(app, req, fetch, None)


def node(app: ApiApp, req: Request) -> Response | Any:
    """One node; an unknown one is a 404 with no body, as Consul answers."""
    return node_read(app, req, _node_info, b"", missing_status=404)
