"""/v1/health: instances with their checks, the reads that load balancers poll hardest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waypost.api import shapes
from waypost.api.common import HTTPError, node_meta_args
from waypost.api.http import Request, Response
from waypost.api.reads import indexed_read, instances_read
from waypost.api.selectors import CHECK_SERVICE_NODE, HEALTH_CHECK
from waypost.state import queries

if TYPE_CHECKING:
    from waypost.api.app import ApiApp


def service(app: ApiApp, req: Request) -> Response | Any:
    passing = req.flag("passing") and req.arg("passing") not in ("false", "0")
    return instances_read(
        app, req, shapes.check_service_node, CHECK_SERVICE_NODE, passing=passing, row=queries.filter_row
    )


def node(app: ApiApp, req: Request) -> Response | Any:
    return indexed_read(app, req, lambda idx: queries.node_checks(idx, req.param), HEALTH_CHECK)


def checks(app: ApiApp, req: Request) -> Response | Any:
    return indexed_read(app, req, lambda idx: queries.health_checks_for_service(idx, req.param), HEALTH_CHECK)


def state(app: ApiApp, req: Request) -> Response | Any:
    wanted = req.param
    if wanted not in ("any", "passing", "warning", "critical"):
        raise HTTPError(400, f"Invalid state: {wanted!r}")
    meta = node_meta_args(req)
    return indexed_read(app, req, lambda idx: queries.state_checks(idx, wanted, meta), HEALTH_CHECK)
