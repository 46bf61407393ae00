"""Consul's ``/v1/internal/ui`` reads: each page of the web UI gets what it shows in one
blocking query (a services summary, nodes with their services and checks), rather than
one query per row. Shapes as Consul's ui_endpoint.go sends them."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    Nodes: list[str] | None
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


def _checks_by_node(idx: Indexes) -> dict[str, tuple[dict[str, str], dict[str, dict[str, str]]]]:
    """Each node's check statuses by CheckID: its node-level ones, and by service ID the
    rest, in one pass (per instance, scanning every check on its node again would be
    quadratic)."""
    out: dict[str, tuple[dict[str, str], dict[str, dict[str, str]]]] = {}
    for node_name, checks in idx.checks.items():
        node_level: dict[str, str] = {}
        per_service: dict[str, dict[str, str]] = {}
        for check in checks.values():
            if check.ServiceID:
                per_service.setdefault(check.ServiceID, {})[check.CheckID] = check.Status
            else:
                node_level[check.CheckID] = check.Status
        out[node_name] = (node_level, per_service)
    return out


@dataclass
class _Tally:
    """One service's summary while the instances are read."""

    nodes: dict[str, None] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    sources: dict[str, None] = field(default_factory=dict)
    checks: dict[tuple[str, str], str] = field(default_factory=dict)
    """Status by (node, CheckID): each check counts once however many instances share it."""
    kind: str = ""
    datacenter: str = ""
    count: int = 0
    native: bool = False
    proxy_modes: set[str] = field(default_factory=set)
    """The modes of the proxies in front of this service; none when it has no proxy."""

    def add_checks(self, node: str, *statuses: dict[str, str]) -> None:
        for by_id in statuses:
            self.checks.update(((node, cid), status) for cid, status in by_id.items())

    def summary(self, name: str) -> ServiceListingSummary:
        states = list(self.checks.values())
        return ServiceListingSummary(
            self.kind or msgspec.UNSET, name, self.datacenter, sorted(self.tags) or None,
            sorted(self.nodes) if self.count else None, list(self.sources) or None, self.count,
            states.count("passing"), states.count("warning"), states.count("critical"), {},
            self.proxy_modes == {"transparent"}, self.native, bool(self.proxy_modes), False,
        )  # fmt: skip


def _summaries(idx: Indexes) -> list[ServiceListingSummary]:
    """Each service's instances counted and its checks (the instances' own and their nodes')
    tallied once per node and check, as Consul's summarizeServices does. A proxy's checks
    count toward its destination too, which then shows ConnectedWithProxy (and is listed
    even with no instance of its own); TransparentProxy when every such proxy is in that
    mode; ConnectNative as the last instance in Consul's (node, ID) order has it.
    ConnectedWithGateway needs a gateway's config entry, which there is none of here."""
    by_node = _checks_by_node(idx)
    no_checks: tuple[dict[str, str], dict[str, dict[str, str]]] = ({}, {})
    tallies: dict[str, _Tally] = {}
    for name, instances in idx.instances.items():
        for (node_name, sid), svc in sorted(
            instances.items(), key=lambda kv: (kv[0][0].lower(), kv[0][1].lower())
        ):
            node = idx.nodes.get(node_name)
            if node is None:
                continue
            tally = tallies.setdefault(name, _Tally())
            node_level, per_service = by_node.get(node_name, no_checks)
            own = per_service.get(sid, {})
            tally.count += 1
            tally.nodes[node_name] = None
            tally.add_checks(node_name, node_level, own)
            tally.kind, tally.datacenter = svc.Kind, node.Datacenter
            tally.native = svc.Connect is not None and svc.Connect.Native
            tally.tags.update(svc.Tags)
            if svc.Meta.get(EXTERNAL_SOURCE):
                tally.sources[svc.Meta[EXTERNAL_SOURCE]] = None
            if svc.Kind == "connect-proxy" and svc.Proxy is not None:
                destination = tallies.setdefault(svc.Proxy.DestinationServiceName, _Tally())
                destination.proxy_modes.add(svc.Proxy.Mode)
                destination.add_checks(node_name, node_level, own)
    return [tally.summary(name) for name, tally in sorted(tallies.items())]


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
