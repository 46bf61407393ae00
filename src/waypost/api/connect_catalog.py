"""The mesh's catalog reads: the instances that take Connect traffic for a service (its
sidecar proxies and its Connect-native instances), the gateways in front of it, and its
discovery chain (the default one: waypost keeps no service-router, splitter or resolver
config entries, so every chain is a single resolver to the service itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waypost.api import shapes
from waypost.api.common import filter_predicate, node_meta_args, require_param
from waypost.api.http import Request, Response
from waypost.api.reads import indexed_read
from waypost.api.selectors import CHECK_SERVICE_NODE, SERVICE_NODE
from waypost.state import queries
from waypost.state.indexes import Indexes

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["discovery_chain"]

_CONNECT_TIMEOUT = "5s"


def _read(app: ApiApp, req: Request, passing: bool, health: bool) -> Response | Any:
    service = require_param(req, "service name")
    tags, meta = req.args("tag"), node_meta_args(req)
    keep = filter_predicate(req, CHECK_SERVICE_NODE if health else SERVICE_NODE)

    def fetch(idx: Indexes) -> queries.Read:
        index, topics, found = queries.service_instances(
            idx, service, tags=tags, node_meta=meta, passing_only=passing, connect=True
        )
        if health:
            rows: list[Any] = [shapes.check_service_node(i) for i in found]
            if keep is not None:
                rows = [r for r, i in zip(rows, found, strict=True) if keep(_filter_row(i))]
        else:
            rows = [shapes.service_node(i) for i in found]
            if keep is not None:
                rows = [r for r in rows if keep(r)]
        return index, topics, rows

    return indexed_read(app, req, fetch, None)


def _filter_row(inst: queries.ServiceInstance) -> dict[str, Any]:
    return {"Node": inst.node, "Service": inst.service, "Checks": inst.checks}


def catalog_connect(app: ApiApp, req: Request) -> Response | Any:
    return _read(app, req, passing=False, health=False)


def health_connect(app: ApiApp, req: Request) -> Response | Any:
    passing = req.flag("passing") and req.arg("passing") not in ("false", "0")
    return _read(app, req, passing=passing, health=True)


def health_ingress(app: ApiApp, req: Request) -> Response | Any:
    """Ingress gateways exposing the service: those come from ingress-gateway config
    entries, which waypost does not keep, so there are none (a blocking read still waits;
    a malformed ``?filter`` is still refused)."""
    require_param(req, "service name")
    filter_predicate(req, CHECK_SERVICE_NODE)
    return indexed_read(app, req, lambda idx: (idx.table_index("services"), (("services",),), []), None)


def gateway_services(app: ApiApp, req: Request) -> Response | Any:
    """The services a terminating or ingress gateway fronts, which only config entries
    declare: none here."""
    require_param(req, "gateway name")
    return indexed_read(app, req, lambda idx: (idx.table_index("services"), (("services",),), []), None)


def _trust_domain(idx: Indexes) -> str:
    ca = next(iter(idx.connect_ca.values()), None)
    return f"{ca.ClusterID}.consul" if ca is not None else "consul"


def discovery_chain(app: ApiApp, req: Request) -> Response | Any:
    """Consul's compiled default chain: one resolver, one target, the service itself."""
    service = require_param(req, "service name")
    dc = app.agent.datacenter

    def fetch(idx: Indexes) -> queries.Read:
        target = f"{service}.default.default.{dc}"
        sni = f"{service}.default.{dc}.internal.{_trust_domain(idx)}"
        chain = {
            "ServiceName": service, "Namespace": "default", "Partition": "default", "Datacenter": dc,
            "Default": True, "Protocol": "tcp", "StartNode": f"resolver:{target}",
            "Nodes": {f"resolver:{target}": {
                "Type": "resolver", "Name": target,
                "Resolver": {"ConnectTimeout": _CONNECT_TIMEOUT, "Default": True, "Target": target},
            }},
            "Targets": {target: {
                "ID": target, "Service": service, "Namespace": "default", "Partition": "default",
                "Datacenter": dc, "MeshGateway": {}, "Subset": {}, "ConnectTimeout": _CONNECT_TIMEOUT,
                "SNI": sni, "Name": sni,
            }},
        }  # fmt: skip
        return idx.table_index("connect-ca"), (("connect-ca",),), {"Chain": chain}

    return indexed_read(app, req, fetch, None)
