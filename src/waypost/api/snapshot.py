"""/v1/snapshot: save the catalog, KV and sessions as a Consul-layout archive, and restore one."""

from __future__ import annotations

import asyncio
import io
from typing import IO, TYPE_CHECKING

from waypost.api.common import HTTPError, parse_consistency
from waypost.api.http import Request, Response
from waypost.api.operator import raft_servers
from waypost.state import snapshot_ops
from waypost.state.snapshot import SnapshotError, decode
from waypost.state.state import State

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
    """The body arrives as a file of any size (``SPOOLED_BODIES``), as Consul takes one.
    Shielded: a client that hangs up mid-restore must not leave it half done."""
    source = req.body_file if req.body_file is not None else io.BytesIO(req.body)
    try:
        await asyncio.shield(_verify_and_restore(app.state, source))
    except SnapshotError as exc:
        raise HTTPError(400, str(exc)) from None
    return Response(b"")


async def _verify_and_restore(state: State, source: IO[bytes]) -> None:
    """The whole file is verified, off the event loop, before anything is written."""
    with source:
        snap = await asyncio.to_thread(decode, source)
    await snapshot_ops.restore(state, snap)
