"""waypost's read of virtual IPs, for the tools around the registry (``waypost proxy -vip``).

Consul serves no such read: its ``PUT /v1/internal/service-virtual-ip`` only assigns
manual addresses to mesh services, and its DNS ``virtual`` lookup is the one way to read
one. A tool needs more than DNS gives: the filter of a declared virtual service, and a
blocking query to follow allocations, so these are waypost's own paths. The instances
behind a name come in ``/v1/health/service``'s shape, selected here, so that a tool
never evaluates a declared virtual service's filter itself.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from waypost.api import shapes
from waypost.api.common import require_param
from waypost.api.filter import FilterError, compile_filter
from waypost.api.http import Request, Response
from waypost.api.reads import indexed_read
from waypost.state import queries, schema
from waypost.state.indexes import Indexes
from waypost.state.model import VirtualIP

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["SELECTORS", "instances", "list_", "one"]

SELECTORS = ("Name", "IP", "Filter", "CreateIndex", "ModifyIndex")
_TOPICS = ((schema.VIRTUAL_IPS.name,),)
_DECLARED_TOPICS = (*_TOPICS, ("services",), ("checks",), ("nodes",))
"""Any instance anywhere may start or stop matching a declared virtual service's filter."""


def _index(idx: Indexes) -> int:
    return idx.table_index(schema.VIRTUAL_IPS.name)


def list_(app: ApiApp, req: Request) -> Response | Any:
    """Every allocation, by name; ``?filter`` applies to the records."""

    def fetch(idx: Indexes) -> queries.Read:
        return _index(idx), _TOPICS, [idx.virtual_ips[name] for name in sorted(idx.virtual_ips)]

    return indexed_read(app, req, fetch, SELECTORS)


def one(app: ApiApp, req: Request) -> Response | Any:
    """One name's allocation, or ``null`` while it has none (as ``catalog/node`` answers an
    unknown node), so that a tool can block until the leader has allocated it."""
    name = require_param(req, "virtual IP name")
    return indexed_read(app, req, lambda idx: (_index(idx), _TOPICS, idx.virtual_ips.get(name)), None)


def _declared(idx: Indexes, record: VirtualIP) -> list[queries.ServiceInstance]:
    """Every instance, of any service, whose ``Service``, ``ID``, ``Tags``, ``Meta``, ``Port``
    or ``Kind`` the record's filter matches (checked when the configuration was loaded)."""
    keep = compile_filter(record.Filter)
    found = []
    for name in sorted(idx.instances):
        for (node_name, sid), svc in sorted(idx.instances[name].items()):
            row = {"Service": svc.Service, "ID": svc.ID, "Tags": svc.Tags, "Meta": svc.Meta,
                   "Port": svc.Port, "Kind": svc.Kind}  # fmt: skip
            node = idx.nodes.get(node_name)
            with contextlib.suppress(FilterError):  # a type clash with this row: not a match
                if node is not None and keep.matches(row):
                    found.append(queries.ServiceInstance(node, svc, idx.checks_for(node_name, sid)))
    return found


def instances(app: ApiApp, req: Request) -> Response | Any:
    """The instances behind a name, as ``/v1/health/service`` lists them (checks included,
    unhealthy ones too): a catalog service's own, or those a declared filter selects.
    A name without an address has none, and the read blocks until it has."""
    name = require_param(req, "virtual IP name")

    def fetch(idx: Indexes) -> queries.Read:
        record = idx.virtual_ips.get(name)
        if record is None:
            return _index(idx), _TOPICS, []
        if record.Filter:
            index = max(_index(idx), *(idx.table_index(t) for t in ("services", "checks", "nodes")))
            return index, _DECLARED_TOPICS, [shapes.check_service_node(i) for i in _declared(idx, record)]
        index, topics, found = queries.service_instances(idx, name)
        return max(index, _index(idx)), (*_TOPICS, *topics), [shapes.check_service_node(i) for i in found]

    return indexed_read(app, req, fetch, None)
