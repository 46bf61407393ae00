"""/v1/internal/store: the store interface over HTTP, so client agents can keep a replica of
the catalog (served locally, for reads, DNS and blocking queries) while every write and
lease goes through a server to the real store.

Consul's client agents forward RPCs to servers; waypost forwards store operations
instead, which keeps client agents identical to servers above the store seam.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING

from waypost.api.common import HTTPError, parse_uint, query_duration
from waypost.api.http import Request, Response
from waypost.state.state import State
from waypost.store import wire
from waypost.store.base import Event, LeaseNotFoundError

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["EventRing"]

_MSGPACK = "application/msgpack"


class EventRing:
    """The last ``size`` store revisions this server applied, for clients' watches."""

    def __init__(self, state: State, size: int = 20000) -> None:
        self._batches: deque[tuple[int, list[Event]]] = deque(maxlen=size)
        self.first_available = state.indexes.revision + 1
        self._arrived = asyncio.Event()
        state.listeners.append(self._on_batch)

    def _on_batch(self, batch: list[Event], revision: int) -> None:
        if len(self._batches) == self._batches.maxlen:
            self.first_available = self._batches[0][0] + 1
        self._batches.append((revision, batch))
        self._arrived.set()
        self._arrived = asyncio.Event()

    def since(self, start: int) -> list[list[Event]] | None:
        """Batches at or after ``start``; None when they are no longer kept."""
        if start < self.first_available:
            return None
        found: list[list[Event]] = []
        for rev, events in reversed(self._batches):
            if rev < start:
                break
            found.append(events)
        found.reverse()
        return found

    async def wait(self, limit: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), limit)


def _packed(body: bytes, status: int = 200) -> Response:
    return Response(body, status, _MSGPACK)


async def range_(app: ApiApp, req: Request) -> Response:
    result = await app.state.store.range(req.arg("prefix") or "")
    return _packed(wire.encode(result))


async def get(app: ApiApp, req: Request) -> Response:
    return _packed(wire.encode(await app.state.store.get(req.arg("key") or "")))


async def revision(app: ApiApp, req: Request) -> Response:
    return _packed(wire.encode(await app.state.store.revision()))


async def txn(app: ApiApp, req: Request) -> Response:
    try:
        compares, success, failure = wire.decode_txn_request(req.body)
    except ValueError as exc:
        raise HTTPError(400, f"bad store transaction: {exc}") from None
    try:
        result = await app.state.store.txn(compares, success, failure)
    except LeaseNotFoundError:
        return _packed(wire.encode(False), 404)
    return _packed(wire.encode_txn_result(result))


async def watch(app: ApiApp, req: Request) -> Response:
    start = parse_uint(req, "from", default=1)
    wait = query_duration(req, "wait", "Invalid wait time") or 30.0
    ring = app.event_ring
    batches = ring.since(start)
    if batches is None:
        return _packed(wire.encode(ring.first_available), 410)
    if not batches:
        await ring.wait(min(wait, 300.0))
        batches = ring.since(start)
        if batches is None:
            return _packed(wire.encode(ring.first_available), 410)
    return _packed(wire.encode(batches))


async def lease(app: ApiApp, req: Request) -> Response:
    store = app.state.store
    action, _, ident = req.param.partition("/")
    try:
        if action == "grant":
            ttl = query_duration(req, "ttl", "Invalid ttl") or 0.0
            return _packed(wire.encode(await store.lease_grant(ttl)))
        lease_id = int(ident or "0")
        if action == "keepalive":
            return _packed(wire.encode(await store.lease_keepalive(lease_id)))
        if action == "revoke":
            await store.lease_revoke(lease_id)
            return _packed(wire.encode(True))
    except LeaseNotFoundError:
        return _packed(wire.encode(False), 404)
    except ValueError:
        raise HTTPError(400, f"bad lease id {ident!r}") from None
    raise HTTPError(404, f"unknown lease action {action!r}")
