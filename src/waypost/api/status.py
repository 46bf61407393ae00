"""/v1/status and /v1/coordinate: who leads, and network coordinates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import encode_json, json_response
from waypost.api.http import Request, Response

if TYPE_CHECKING:
    from waypost.api.app import ApiApp


def leader(app: ApiApp, req: Request) -> Response:
    current = app.state.indexes.leader
    return json_response(current.Addr if current is not None else "")


def peers(app: ApiApp, req: Request) -> Response:
    idx = app.state.indexes
    servers = [m for _, m in sorted(idx.members.items()) if m.Server and not m.Left and m.Name in idx.live]
    return json_response([f"{m.Addr}:{m.Tags.get('port', '8300')}" for m in servers])


_ORIGIN = {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}


def _coordinates(app: ApiApp) -> list[dict[str, Any]]:
    idx = app.state.indexes
    return [{"Node": name, "Segment": "", "Coord": _ORIGIN} for name in sorted(idx.nodes)]


def coordinate_datacenters(app: ApiApp, req: Request) -> Response:
    return json_response(
        [{"Datacenter": app.agent.datacenter, "AreaID": "wan", "Coordinates": _coordinates(app)}]
    )


def coordinate_nodes(app: ApiApp, req: Request) -> Response | Any:
    def query() -> QueryResult:
        return QueryResult(
            app.state.indexes.table_index("nodes"), (("nodes",),), encode_json(_coordinates(app))
        )

    return blocking_read(app.state, req, query, cache=app.cache)


def coordinate_node(app: ApiApp, req: Request) -> Response | Any:
    name = req.param

    def query() -> QueryResult:
        idx = app.state.indexes
        found = [c for c in _coordinates(app) if c["Node"] == name]
        index = idx.topics.index(("node", name)) or idx.table_index("nodes")
        return QueryResult(index, (("node", name),), encode_json(found), 200 if found else 404)

    return blocking_read(app.state, req, query, cache=app.cache)
