"""/v1/event: user events (fire and list), kept as the last 256 in the store."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import HTTPError, encode_json, json_response, require_param
from waypost.api.http import Request, Response
from waypost.state import schema
from waypost.state.model import UserEvent
from waypost.store.base import Delete, Put

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

MAX_EVENTS = 256


async def fire(app: ApiApp, req: Request) -> Response:
    name = require_param(req, "event name")
    for flt in ("service", "tag", "node"):
        pattern = req.arg(flt)
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise HTTPError(400, f"Invalid {flt} filter: {exc}") from None
    if req.arg("tag") and not req.arg("service"):
        raise HTTPError(400, "Cannot provide tag filter without service filter.")
    events = app.state.indexes.events
    ltime = (events.peekitem(-1)[1].LTime + 1) if events else 1
    event = UserEvent(
        ID=str(uuid.uuid4()),
        Name=name,
        Payload=req.body or None,
        NodeFilter=req.arg("node") or "",
        ServiceFilter=req.arg("service") or "",
        TagFilter=req.arg("tag") or "",
        LTime=ltime,
    )
    ops: list[Put | Delete] = [Put(schema.EVENTS.key(f"{ltime:020d}"), schema.encode(event))]
    overflow = len(events) + 1 - MAX_EVENTS
    ops.extend(Delete(schema.EVENTS.key(k)) for k in list(events.keys())[: max(0, overflow)])
    result = await app.state.store.txn([], ops)
    await app.state.wait_applied(result.revision)
    return json_response(event)


def list_(app: ApiApp, req: Request) -> Response | Any:
    name = req.arg("name") or ""

    def query() -> QueryResult:
        idx = app.state.indexes
        found = [e for e in idx.events.values() if not name or e.Name == name]
        index = max(1, idx.topics.index(("events",)))
        return QueryResult(index, (("events",),), encode_json(found))

    return blocking_read(app.state, req, query, cache=app.cache)
