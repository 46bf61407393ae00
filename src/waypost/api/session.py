"""/v1/session: sessions that hold KV locks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from waypost.agent.definitions import canonical_keys, typed
from waypost.api import shapes
from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import HTTPError, bool_response, decode_json, encode_json, require_param
from waypost.api.http import Request, Response
from waypost.durations import format_duration, parse_duration
from waypost.state import session_ops
from waypost.state.model import Session

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

MAX_LOCK_DELAY = 60.0
_FIELDS = ("ID", "Name", "Node", "LockDelay", "Behavior", "TTL", "Checks", "NodeChecks", "ServiceChecks")


def _lock_delay(value: Any) -> int:
    """Nanoseconds. Consul reads a bare number below 1000 as seconds, else as nanoseconds."""
    if isinstance(value, bool):
        raise HTTPError(400, "Request decode failed: LockDelay must be a duration")
    if isinstance(value, int | float):
        seconds = max(0.0, float(value) if value < 1000 else value / 1e9)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise HTTPError(400, f"Request decode failed: LockDelay: {exc}") from None
    else:
        raise HTTPError(400, "Request decode failed: LockDelay must be a duration")
    return int(min(seconds, MAX_LOCK_DELAY) * 1e9)


class _ServiceCheck(msgspec.Struct, forbid_unknown_fields=False):
    ID: str = ""
    Namespace: str = ""


_BAD = "Request decode failed"


def _ttl(value: Any) -> float:
    if not value:
        return 0.0
    try:
        seconds = parse_duration(typed(value, str, "TTL", _BAD))
    except ValueError as exc:
        raise HTTPError(400, f"Request decode failed: TTL: {exc}") from None
    if seconds != 0 and not 10 <= seconds <= 86400:
        raise HTTPError(
            400, f"Invalid Session TTL '{format_duration(seconds)}', must be between [10s=24h0m0s]"
        )
    return seconds


async def create(app: ApiApp, req: Request) -> Response:
    body = decode_json(req, allow_empty=True) or {}
    fields = canonical_keys(
        body, _FIELDS, what="Request", ignored=("Namespace", "Partition", "NodeChecksLegacy")
    )
    node_checks = fields.get("NodeChecks")
    if node_checks is None:
        node_checks = fields.get("Checks")
    service_checks = typed(fields.get("ServiceChecks") or [], list[_ServiceCheck], "ServiceChecks", _BAD)
    if node_checks is None and not service_checks:
        node_checks = ["serfHealth"]
    ttl = _ttl(fields.get("TTL"))
    session = Session(
        ID="",
        Name=typed(fields.get("Name") or "", str, "Name", _BAD),
        Node=typed(fields.get("Node") or app.agent.node.Node, str, "Node", _BAD),
        LockDelay=_lock_delay(fields["LockDelay"]) if fields.get("LockDelay") is not None else 15_000_000_000,
        Behavior=typed(fields.get("Behavior") or "release", str, "Behavior", _BAD),
        TTL=format_duration(ttl) if ttl else "",
        NodeChecks=typed(node_checks or [], list[str], "NodeChecks", _BAD),
        ServiceChecks=[{"ID": c.ID, "Namespace": c.Namespace} for c in service_checks],
    )
    sid = await session_ops.create_session(app.state, session, ttl)
    return Response(encode_json({"ID": sid}))


async def destroy(app: ApiApp, req: Request) -> Response:
    sid = require_param(req, "session ID")
    await session_ops.destroy_session(app.state, sid, app.agent.lock_delays)
    return bool_response(True)


async def renew(app: ApiApp, req: Request) -> Response:
    sid = require_param(req, "session ID")
    session = app.state.indexes.sessions.get(sid)
    if session is None or not await session_ops.renew_session(app.state, sid):
        raise HTTPError(404, f"Session id '{sid}' not found")
    return Response(encode_json([shapes.session(session)]))


def _sessions(app: ApiApp, req: Request, pick: Any, topic: tuple[str, ...]) -> Response | Any:
    def query() -> QueryResult:
        idx = app.state.indexes
        found = sorted(pick(idx.sessions), key=lambda s: s.ID)
        index = idx.topics.index(topic) or idx.table_index("sessions")
        return QueryResult(index, (topic,), encode_json([shapes.session(s) for s in found]))

    return blocking_read(app.state, req, query, cache=app.cache)


def info(app: ApiApp, req: Request) -> Response | Any:
    sid = require_param(req, "session ID")
    return _sessions(app, req, lambda all_: [all_[sid]] if sid in all_ else [], ("session", sid))


def node(app: ApiApp, req: Request) -> Response | Any:
    name = require_param(req, "node")
    return _sessions(
        app, req, lambda all_: [s for s in all_.values() if s.Node == name], ("session-node", name)
    )


def list_(app: ApiApp, req: Request) -> Response | Any:
    return _sessions(app, req, lambda all_: list(all_.values()), ("sessions",))
