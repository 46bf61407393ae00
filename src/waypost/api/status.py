"""The small endpoints clients and probes hit first: the index page, /v1/status (who
leads) and /v1/coordinate (network coordinates)."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import HTTPError, decode_json, encode_json, json_response
from waypost.api.http import Request, Response
from waypost.state import schema
from waypost.state.model import Coordinate
from waypost.state.state import TxnPlan
from waypost.store.base import Put
from waypost.ui.serve import content_prefix

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

UI_DISABLED = (
    "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart."
)


def index(app: ApiApp, req: Request) -> Response:
    """``GET /``: load balancers probe it, so it answers 200 even without a UI; with one it
    redirects there, as Go's ``http.Redirect`` does."""
    ui = app.agent.config.ui_config
    if not (ui.enabled or ui.dir):
        return Response.text(UI_DISABLED)
    target = content_prefix(ui.content_path)
    body = f'<a href="{html.escape(target)}">Moved Permanently</a>.\n\n'.encode()
    return Response(body, 301, "text/html; charset=utf-8", [("Location", target)])


def leader(app: ApiApp, req: Request) -> Response:
    current = app.state.indexes.leader
    return json_response(current.Addr if current is not None else "")


def peers(app: ApiApp, req: Request) -> Response:
    idx = app.state.indexes
    servers = [m for _, m in sorted(idx.members.items()) if m.Server and not m.Left and m.Name in idx.live]
    return json_response([f"{m.Addr}:{m.Tags.get('port', '8300')}" for m in servers])


DIMENSIONS = 8
"""Serf's default coordinate dimensionality; Consul refuses a coordinate of any other."""

_ORIGIN = {"Vec": [0.0] * DIMENSIONS, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}
"""Serf's starting coordinate, reported for a node that has sent none of its own."""

_COORD_SCALARS = ("Error", "Adjustment", "Height")


def _coordinates(app: ApiApp, req: Request) -> list[dict[str, Any]]:
    """Every catalog node's coordinates, by node then segment (``?segment`` picks one)."""
    idx = app.state.indexes
    stored: dict[str, list[Coordinate]] = {}
    for coord in idx.coordinates.values():
        stored.setdefault(coord.Node, []).append(coord)
    segment = req.arg("segment")
    out = []
    for name in sorted(idx.nodes):
        found = sorted(stored.get(name, ()), key=lambda c: c.Segment)
        rows = [{"Node": name, "Segment": c.Segment, "Coord": c.Coord} for c in found]
        for row in rows or [{"Node": name, "Segment": "", "Coord": _ORIGIN}]:
            if segment is None or row["Segment"] == segment:
                out.append(row)
    return out


def _coordinates_index(app: ApiApp) -> int:
    idx = app.state.indexes
    return max(idx.table_index("nodes"), idx.table_index("coordinates"))


def coordinate_datacenters(app: ApiApp, req: Request) -> Response | Any:
    """Consul's WAN pool holds servers only, so client and external nodes are left out
    (``consul rtt -wan`` cannot find them there either). Other datacenters' servers come
    from this server's WAN probes; a client agent asks a server, which has them."""
    if not app.agent.config.server:
        return app.agent.wan.ask_server(req)
    idx = app.state.indexes
    servers = {m.Name for m in idx.members.values() if m.Server and not m.Left}
    found = [c for c in _coordinates(app, req) if c["Node"] in servers]
    local = {"Datacenter": app.agent.datacenter, "AreaID": "wan", "Coordinates": found}
    return json_response([local, *app.agent.wan.remote_coordinates()])


def coordinate_nodes(app: ApiApp, req: Request) -> Response | Any:
    def query() -> QueryResult:
        body = encode_json(_coordinates(app, req))
        return QueryResult(_coordinates_index(app), (("nodes",), ("coordinates",)), body)

    return blocking_read(app.state, req, query, cache=app.cache)


def coordinate_node(app: ApiApp, req: Request) -> Response | Any:
    name = req.param

    def query() -> QueryResult:
        idx = app.state.indexes
        found = [c for c in _coordinates(app, req) if c["Node"] == name]
        index = max(idx.topics.index(("node", name)), idx.table_index("coordinates"))
        topics = (("node", name), ("coordinates",))
        return QueryResult(index, topics, encode_json(found), 200 if found else 404)

    return blocking_read(app.state, req, query, cache=app.cache)


async def coordinate_update(app: ApiApp, req: Request) -> Response:
    """Store a node's coordinate. As in Consul, an update for a node the catalog does not
    hold is accepted and dropped: coordinates live and die with their node."""
    body = decode_json(req)
    if not isinstance(body, dict):
        raise HTTPError(400, "Request decode failed: the body must be a JSON object")
    fields = {key.lower(): value for key, value in body.items()}
    node, segment = _text(fields, "Node"), _text(fields, "Segment")
    record = Coordinate(Node=node, Segment=segment, Coord=_coord(fields.get("coord")))
    name = f"{node}:{segment}"

    def plan() -> TxnPlan | None:
        idx = app.state.indexes
        if node not in idx.nodes or idx.coordinates.get(name) == record:
            return None
        return [], [Put(schema.COORDINATES.key(name), schema.encode(record))]

    await app.state.write(plan)
    return Response()


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name.lower())
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HTTPError(400, f"Request decode failed: {name} must be a string")
    return value


def _coord(raw: Any) -> dict[str, Any]:
    """Consul's checks, with its messages: finite numbers, and serf's dimensionality."""
    if raw is None:
        raise HTTPError(400, "invalid coordinate")
    if not isinstance(raw, dict):
        raise HTTPError(400, "Request decode failed: Coord must be a JSON object")
    fields = {key.lower(): value for key, value in raw.items()}
    raw_vec = fields.get("vec") or []
    if not isinstance(raw_vec, list):
        raise HTTPError(400, "Request decode failed: Coord.Vec must be a list of numbers")
    vec = [_number(v, "Coord.Vec") for v in raw_vec]
    scalars = {name: _number(fields.get(name.lower(), 0), f"Coord.{name}") for name in _COORD_SCALARS}
    if not all(math.isfinite(v) for v in [*vec, *scalars.values()]):
        raise HTTPError(400, "invalid coordinate")
    if len(vec) != DIMENSIONS:
        raise HTTPError(400, "incompatible coordinate")
    return {"Vec": vec, **scalars}


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HTTPError(400, f"Request decode failed: {field} must be a number")
    return float(value)
