"""/v1/stream: the delta streams beside the blocking reads, as server-sent events.

A thin adapter over ``waypost.stream``: it checks the request, subscribes a reader to its
topic and pumps the reader's framed events into a streamed response. The HTTP server pulls
the next chunk only while the client reads, so a reader that stops reading accumulates
changes in its ``Subscriber`` until the bound, where it is hung up on.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Protocol

from waypost.api.acl_rules import NEEDS
from waypost.api.common import HTTPError, filter_predicate, parse_uint
from waypost.api.http import Request, Response
from waypost.api.selectors import CHECK_SERVICE_NODE
from waypost.state.state import State
from waypost.store.base import Event
from waypost.stream.feed import Change, Hub
from waypost.stream.subscriber import Subscriber, Test

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["PING", "Queued", "hub_of", "pump"]

log = logging.getLogger("waypost.stream")

PING = 15.0
"""Seconds of silence after which an idle stream gets a keep-alive comment."""

_HUBS: weakref.WeakKeyDictionary[State, Hub] = weakref.WeakKeyDictionary()


def hub_of(state: State) -> Hub:
    """The topics followed over ``state``, fed by its change feed from the first reader on."""
    hub = _HUBS.get(state)
    if hub is None:
        hub = _HUBS[state] = Hub()
        state.listeners.append(_Feeder(state, hub))
    return hub


class _Feeder:
    """The state listener: each applied revision to the hub, or after a re-list a rebuild."""

    def __init__(self, state: State, hub: Hub) -> None:
        self._state = weakref.ref(state)
        self._hub = hub
        self._relists = state.relists

    def __call__(self, batch: list[Event], revision: int) -> None:
        state = self._state()
        if state is None:
            return
        if state.relists != self._relists:
            self._relists = state.relists
            self._hub.rebuild(state.indexes)
        else:
            self._hub.apply(state.indexes, batch, revision)


_UNSUPPORTED = ("tag", "node-meta", "near", "peer", "sampling")
"""List-endpoint parameters a stream does not apply: refused rather than ignored, since the
reader would otherwise follow rows it did not ask for."""


def health_service(app: ApiApp, req: Request) -> Response:
    """``?passing`` and ``?filter`` as on /v1/health/service: a row that stops matching is
    sent as a delete."""
    if not req.param:
        raise HTTPError(400, "Missing service name")
    keep = filter_predicate(req, CHECK_SERVICE_NODE)
    passing = req.flag("passing") and req.arg("passing") not in ("false", "0")

    def match(change: Change) -> bool:
        row = change.row
        if passing and any(c.Status != "passing" for c in row["Checks"]):
            return False
        return keep is None or keep(row)

    tested = match if keep is not None or passing else None
    return _open(app, req, "health", "/v1/stream/health/service/:name", tested)


def catalog_services(app: ApiApp, req: Request) -> Response:
    return _open(app, req, "catalog", "/v1/stream/catalog/services", None)


def kv(app: ApiApp, req: Request) -> Response:
    return _open(app, req, "kv", "/v1/stream/kv/:prefix", None)


def _resume(req: Request) -> int | None:
    """The index a reconnecting reader saw last: ``Last-Event-ID`` (what an EventSource
    sends), else ``?index``; 0 or neither means "from a snapshot"."""
    raw = req.headers.get("last-event-id")
    if raw is not None:
        raw = raw.strip()
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
            raise HTTPError(400, f"Invalid Last-Event-ID: {raw!r} is not an index")
        return int(raw) or None
    return parse_uint(req, "index") or None


def _open(app: ApiApp, req: Request, kind: str, route: str, match: Test | None) -> Response:
    dc = req.arg("dc")
    if dc and dc != app.agent.datacenter:
        raise HTTPError(400, f"Streams are served within their datacenter: ask an agent in {dc!r}")
    if kind != "health" and req.arg("filter"):
        raise HTTPError(400, f"Invalid filter: {route} takes no filter")
    unsupported = next((name for name in _UNSUPPORTED if name in req.query), None)
    if unsupported is not None:
        raise HTTPError(400, f"Invalid parameter: {route} does not take ?{unsupported} (use ?filter)")
    resume = _resume(req)
    state = app.state
    hub = hub_of(state)
    topic = hub.topic(kind, req.param, state.indexes)
    sub = Subscriber(topic, match=match)
    if app.gate is not None:
        sub.recheck = _acl(app, req, route, sub)
        sub.recheck()
    headers = [("Cache-Control", "no-cache"), ("X-Consul-Index", str(max(1, state.indexes.revision)))]
    stream = _pump(hub, sub, req, lambda: sub.start(state.indexes, resume))
    return Response(content_type="text/event-stream", headers=headers, stream=stream)


def _acl(app: ApiApp, req: Request, route: str, sub: Subscriber) -> Callable[[], bool | None]:
    """What the reader's token may read, filtered as the matching list endpoint filters;
    checked again whenever a token, policy or role changes."""
    gate, need = app.gate, NEEDS["GET", route]
    assert gate is not None

    def recheck() -> bool | None:
        before = sub.acl
        try:
            verdict = gate.check(app, req, need)
        except HTTPError:
            return False
        if verdict is None or isinstance(verdict, Response):
            sub.acl = None
            return None if before is None else True
        authz, flt = verdict

        def readable(change: Change) -> bool:
            return bool(flt.rows(authz, change.acl))

        sub.acl = readable
        return True

    return recheck


def _pump(hub: Hub, sub: Subscriber, req: Request, start: Callable[[], None]) -> AsyncIterator[bytes]:
    """A delta stream reader's events as they come, pinged while idle, counted when cut."""

    def started() -> bool:
        start()
        return True

    def cut() -> None:
        hub.cut_off += 1
        log.warning(
            "stream reader %s on %s fell more than %d bytes behind; disconnected",
            req.remote,
            req.path,
            sub.limit,
        )

    return pump(sub, req, started, sub.close, cut, sub.ping)


class Queued(Protocol):
    """What ``pump`` drains: a reader's queue of framed bytes; ``cut`` once it went over its
    bound, ``closed`` once nothing more will come."""

    cut: bool
    closed: bool
    wake: Callable[[], None]

    def take(self) -> bytes: ...


async def pump(
    queue: Queued,
    req: Request,
    start: Callable[[], bool],
    stop: Callable[[], None],
    cut: Callable[[], None],
    ping: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    """A streamed response's chunks, as ``queue`` fills: the one loop behind every stream
    (the delta streams here, the replica streams of ``api.internal``). The reader joins
    what feeds it (``start``, False to end at once) only once the connection begins
    sending, so a client gone before then leaves nothing subscribed; ``stop`` runs however
    the stream ends. A queue over its bound is reported (``cut``) and the connection
    dropped. With ``ping``, it is called after ``PING`` seconds of silence."""
    ready = asyncio.Event()

    def wake() -> None:
        if queue.cut:
            cut()
            req.hangup()
        ready.set()

    queue.wake = wake
    try:
        if not start():
            return
        while True:
            chunk = queue.take()
            if chunk:
                yield chunk
                continue
            if queue.closed:
                return
            ready.clear()
            if ping is None:
                await ready.wait()
                continue
            try:
                async with asyncio.timeout(PING):
                    await ready.wait()
            except TimeoutError:
                ping()
    finally:
        stop()
