"""waypost's read of virtual IPs, for the tools around the registry (``waypost proxy -vip``).

Consul serves no such read: its ``PUT /v1/internal/service-virtual-ip`` only assigns
manual addresses to mesh services, and its DNS ``virtual`` lookup is the one way to read
one. A tool needs more than DNS gives: the filter of a declared virtual service, and a
blocking query to follow allocations, so these are waypost's own paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waypost.api.common import require_param
from waypost.api.http import Request, Response
from waypost.api.reads import indexed_read
from waypost.state import queries, schema
from waypost.state.indexes import Indexes

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["SELECTORS", "list_", "one"]

SELECTORS = ("Name", "IP", "Filter", "CreateIndex", "ModifyIndex")
_TOPICS = ((schema.VIRTUAL_IPS.name,),)


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
