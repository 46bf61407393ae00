"""/v1/snapshot: save the catalog, KV and sessions as a Consul-layout archive, and restore one."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from waypost.api.common import HTTPError, parse_consistency
from waypost.api.http import Request, Response
from waypost.api.operator import raft_servers
from waypost.state import snapshot_ops
from waypost.state.snapshot import SnapshotError, decode

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["restore", "save"]


async def save(app: ApiApp, req: Request) -> Response:
    """Always a fresh read of the store, so ``?stale`` is accepted and changes nothing."""
    parse_consistency(req)
    servers = [(s["ID"], s["Address"]) for s in raft_servers(app.state.indexes)]
    body, index = await snapshot_ops.save(app.state, servers)
    return Response(body, content_type="application/x-gzip", headers=[("X-Consul-Index", str(index))])


async def restore(app: ApiApp, req: Request) -> Response:
    """Shielded: a client that hangs up mid-restore must not leave it half done."""
    try:
        await asyncio.shield(snapshot_ops.restore(app.state, decode(req.body)))
    except SnapshotError as exc:
        raise HTTPError(400, str(exc)) from None
    return Response(b"")
