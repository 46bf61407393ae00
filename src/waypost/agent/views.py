"""A client agent's materialized views: its registry reads answered locally, each view
kept current by one delta stream from a server, as Consul's client agents keep theirs
(``use_streaming_backend``).

Which reads a view answers: blocking (``?index``) and ``?cached`` reads of
``/v1/health/service/<name>`` and ``/v1/catalog/service/<name>`` (one view of the
service's instances, two shapes), of ``/v1/catalog/services`` without ``?filter`` or
``?node-meta``, and, without ACLs, blocking ``/v1/kv/<prefix>?recurse`` and ``?keys``
reads; not ``?consistent`` ones (those go to the leader), nor ``?near`` (the servers hold
the coordinates), ``?peer``, another ``?dc`` or ``merge-central-config``. Everything else
is relayed to a server as before. DNS service lookups are answered from a view once one
holds the service (``lean_dns``).

- One view per (service, list or prefix, token): the server's stream leaves out what the
  token may not read, so a view never shows one caller another's rows. The read's own parameters
  (``?passing``, ``?tag``, ``?node-meta``, ``?filter``) are applied to the view here.
- A view's first read waits for its snapshot; a view the server refuses (4xx: a token
  it does not know) or that no server answers in time is not used: the read is relayed,
  so the caller gets the server's own answer or error.
- A cut stream resumes from the view's index (``Last-Event-ID``) on any live server,
  with back-off; meanwhile the view answers what it holds, its ``X-Consul-LastContact``
  growing. When the history is gone the server sends a new snapshot, swapped in whole.
- A view unread for ``VIEW_IDLE`` seconds is dropped and its stream closed; at most
  ``MAX_VIEWS`` are kept, the least recently read going first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from waypost.agent.health_view import HealthView
from waypost.agent.kv_view import KVView
from waypost.agent.services_view import ServicesView
from waypost.agent.tasks import cancel_all
from waypost.api.blocking import DEFAULT_WAIT, MAX_WAIT, request_key
from waypost.api.caching import MAX_REFRESHED, REFRESH_IDLE
from waypost.api.common import (
    error_response,
    filter_predicate,
    node_meta_args,
    parse_cache_control,
    parse_consistency,
    parse_uint,
    query_duration,
)
from waypost.api.gate import request_secret
from waypost.api.http import Request, Response, settled
from waypost.api.selectors import CHECK_SERVICE_NODE, SERVICE_NODE
from waypost.stream.sse import SseDecoder

__all__ = ["FIRST_SNAPSHOT", "MAX_VIEWS", "VIEW_IDLE", "Views"]

log = logging.getLogger("waypost.agent")

VIEW_IDLE = REFRESH_IDLE
MAX_VIEWS = MAX_REFRESHED
FIRST_SNAPSHOT = 10.0
"""Seconds a read waits for a new view's snapshot before it is relayed instead."""

_HEALTH = "/v1/health/service/"
_INSTANCES = (_HEALTH, "/v1/catalog/service/")
"""Both read the instances of one service, so one view answers both."""
_SERVICES = "/v1/catalog/services"
_KV = "/v1/kv/"
_NOT_FROM_VIEWS = ("near", "peer", "merge-central-config", "ingress")

Ask = Callable[[Request], "Response | Awaitable[Response]"]
Answer = Response | Awaitable[Response]

HEALTH = "health"
SERVICES = "services"
KV = "kv"
"""The kinds of view: a service's instances, the service names, and a KV prefix."""


@dataclass(eq=False)
class _Entry:
    view: HealthView | ServicesView | KVView
    token: str
    used: float
    lost: float | None = None
    """When the stream was last cut; None while it is live."""
    refused: bool = False
    tries: int = 0
    """Streams opened and ended: a read waiting for a first snapshot stops at a failed one."""
    resume: bool = False
    """Whether the next stream resumes from the view's index, or starts with a snapshot."""
    moved: asyncio.Event = field(default_factory=asyncio.Event)
    """Set (and replaced) each time the view moves; also when it is refused or dropped."""
    task: asyncio.Task[None] | None = None


class Views:
    """The views of one client agent; ``ask`` sends a request to a live server."""

    def __init__(
        self,
        ask: Ask,
        acl_policy: str = "allow",
        *,
        acl_enabled: bool = False,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._ask = ask
        self._acl_policy = acl_policy
        self._kv = not acl_enabled
        """KV prefixes are kept only without ACLs: a prefix's listing can take ``list``
        permission, which the KV stream does not check (reads are relayed then)."""
        self._clock = clock
        self._rng = rng or random.Random()
        self._entries: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()
        self.generation = 0
        """Moves whenever any view does (DNS answers built from views are built again)."""
        self.answered = 0
        """Reads answered from a view, HTTP and DNS (``waypost.client.view_reads``)."""

    def __len__(self) -> int:
        return len(self._entries)

    def serves(self, req: Request, datacenter: str) -> bool:
        """Whether ``req`` (a lean client's relayed request) may be answered from a view."""
        kind = _kind(req)
        if kind is None or (kind == KV and not self._kv):
            return False
        dc = req.arg("dc") if req.raw_query else None
        return not dc or dc == datacenter

    def takes(self, req: Request, datacenter: str) -> bool:
        """Whether a read without ``?cached`` is answered from a view: a blocking one, as
        Consul's streaming backend takes only those (a plain read goes to a server and
        sees the writes made just before it)."""
        raw = req.arg("index") if req.raw_query else None
        return bool(raw) and raw != "0" and "cached" not in req.query and self.serves(req, datacenter)

    # -- HTTP ------------------------------------------------------------------------------

    def read(self, req: Request, relay: Callable[[], Answer]) -> asyncio.Future[Response]:
        """A blocking read from its view, or ``relay``'s answer when no view can give it."""

        async def answer() -> Response:
            resp, _ = await self._read(req, relay)
            return resp

        return asyncio.ensure_future(answer())

    async def cached(self, req: Request, relay: Callable[[], Answer]) -> tuple[Response, float | None]:
        """A ``?cached`` read, as ``api.caching.BackgroundSource.read`` gives it: the answer
        and its ``Age`` for a HIT, None for a MISS (a new view, a read that waited, or one
        relayed)."""
        return await self._read(req, relay)

    async def _read(self, req: Request, relay: Callable[[], Answer]) -> tuple[Response, float | None]:
        kind = _kind(req)
        try:
            consistency = parse_consistency(req)
            parse_cache_control(req)
            min_index = parse_uint(req, "index", invalid="Invalid index")
            wait = query_duration(req, "wait", "Invalid wait time")
            answer = _answerer(kind, req)
        except Exception as exc:
            return error_response(exc), None
        entry = self._open(kind or HEALTH, "" if kind == SERVICES else req.param, request_secret(req))
        view = entry.view
        hit = view.ready and not entry.refused
        if not await self._ready(entry):
            return await settled(relay()), None
        if min_index and view.index <= min_index:
            hit = False
            timeout = DEFAULT_WAIT if wait is None or wait <= 0 else min(wait, MAX_WAIT)
            timeout += self._rng.uniform(0, timeout / 16)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    while view.index <= min_index and entry.task is not None:
                        await entry.moved.wait()
        try:
            status, body = answer(view)
        except Exception as exc:
            return error_response(exc), None
        lost = None if entry.lost is None else self._clock() - entry.lost
        headers = [
            ("X-Consul-Index", str(max(1, view.index))),
            ("X-Consul-Knownleader", "true" if lost is None else "false"),
            ("X-Consul-Lastcontact", "0" if lost is None else str(int(lost * 1000))),
            ("X-Consul-Effective-Consistency", consistency),
            ("X-Consul-Default-Acl-Policy", self._acl_policy),
        ]
        self.answered += 1
        return Response(body, status, headers=headers), (lost or 0.0) if hit else None

    # -- DNS -------------------------------------------------------------------------------

    def ready(self, name: str, token: str) -> HealthView | None:
        """The view of service ``name`` for ``token`` if one holds a snapshot (a read of it)."""
        key = (HEALTH, name, token)
        entry = self._entries.get(key)
        view = entry.view if entry is not None and entry.task is not None else None
        if entry is None or not isinstance(view, HealthView) or not view.ready:
            return None
        self._touch(key, entry)
        self.answered += 1
        return view

    def follow(self, name: str, token: str) -> None:
        """Start keeping a view of service ``name`` (DNS asks for it once a server showed
        it exists)."""
        self._open(HEALTH, name, token)

    # -- the views -------------------------------------------------------------------------

    def _open(self, kind: str, name: str, token: str) -> _Entry:
        key = (kind, name, token)
        entry = self._entries.get(key)
        if entry is None or entry.task is None:
            view = _VIEWS[kind](name)
            entry = _Entry(view, token, self._clock())
            self._entries[key] = entry
            entry.task = asyncio.ensure_future(self._follow(key, entry))
            while len(self._entries) > MAX_VIEWS:
                _, oldest = self._entries.popitem(last=False)
                self._stop(oldest)
        self._touch(key, entry)
        return entry

    def _touch(self, key: tuple[str, str, str], entry: _Entry) -> None:
        entry.used = self._clock()
        self._entries.move_to_end(key)

    async def _ready(self, entry: _Entry) -> bool:
        """Whether the view can answer: it holds a snapshot, or gets one before its stream
        fails once or ``FIRST_SNAPSHOT`` passes."""
        tries = entry.tries
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_SNAPSHOT):
                while not entry.view.ready and entry.task is not None and entry.tries == tries:
                    await entry.moved.wait()
        return entry.view.ready and not entry.refused

    def _moved(self, entry: _Entry) -> None:
        self.generation += 1
        moved, entry.moved = entry.moved, asyncio.Event()
        moved.set()

    async def _follow(self, key: tuple[str, str, str], entry: _Entry) -> None:
        """The view's stream, resumed after every cut until the view is idle or refused."""
        backoff = 0.0
        try:
            while self._clock() - entry.used < VIEW_IDLE:
                if backoff:
                    await asyncio.sleep(backoff)
                backoff = min(max(backoff * 2, 0.5), 30.0)
                resp = await self._subscribe(entry)
                if 400 <= resp.status < 500:
                    entry.refused = True
                    break
                if resp.status == 200 and resp.stream is not None and await self._take(entry, resp.stream):
                    backoff = 0.0
                if entry.lost is None:
                    entry.lost = self._clock()
                entry.tries += 1
                self._moved(entry)
        finally:
            entry.task = None
            if self._entries.get(key) is entry:
                del self._entries[key]
            self._moved(entry)

    async def _subscribe(self, entry: _Entry) -> Response:
        view = entry.view
        headers = {"x-consul-token": entry.token} if entry.token else {}
        if entry.resume:
            headers["last-event-id"] = str(view.index)
        else:
            view.expect_snapshot()
        req = Request("GET", view.stream_path(), "", headers, b"")
        try:
            return await settled(self._ask(req))
        except Exception as exc:  # a relay that failed outright: as an unreachable server
            return Response.text(f"subscribing failed: {exc}", 500)

    async def _take(self, entry: _Entry, chunks: AsyncIterator[bytes]) -> bool:
        """Apply one connection's events until it ends; whether any arrived."""
        decoder = SseDecoder()
        view = entry.view
        arrived = False
        try:
            async for chunk in chunks:
                for event in decoder.feed(chunk):
                    arrived = True
                    if view.apply(event):
                        entry.lost, entry.resume = None, True
                        self._moved(entry)
                if self._clock() - entry.used >= VIEW_IDLE:
                    break
        except ValueError as exc:  # a malformed event (BadEvent) or one too large
            log.warning("view of service %r: %s; reading it again", view.name, exc)
            entry.resume = False
        finally:
            view.cut()
            close = getattr(chunks, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        return arrived

    def _stop(self, entry: _Entry) -> None:
        if entry.task is not None:
            entry.task.cancel()

    async def close(self) -> None:
        await cancel_all([e.task for e in self._entries.values() if e.task is not None])
        self._entries.clear()


_VIEWS: dict[str, Callable[[str], HealthView | ServicesView | KVView]] = {
    HEALTH: HealthView,
    SERVICES: ServicesView,
    KV: KVView,
}


def _kind(req: Request) -> str | None:
    """Which kind of view answers ``req``, if one can: the instances of a service, the
    service names (only unfiltered: the catalog stream carries no metadata to filter on),
    or a KV prefix read recursively or as keys."""
    if req.method != "GET":
        return None
    query = req.query
    path = req.path
    if path == _SERVICES:
        kind = None if "filter" in query or "node-meta" in query else SERVICES
    elif path.startswith(_KV):
        kind = KV if "recurse" in query or "keys" in query else None
    else:
        kind = HEALTH if path.startswith(_INSTANCES) and req.param else None
    if kind is None or "consistent" in query or any(p in query for p in _NOT_FROM_VIEWS):
        return None
    return kind


def _answerer(kind: str | None, req: Request) -> Callable[[Any], tuple[int, bytes]]:
    """What ``req`` asks of its view, its parameters read (and refused when malformed, as
    the servers refuse them) before any view is opened. What takes decoding is kept per
    read until the view's next change (``StreamView.kept``)."""
    key = request_key(req)
    if kind == SERVICES:
        return lambda view: (200, view.kept(key, view.body))
    if kind == KV:
        keys = req.flag("keys")
        separator = req.arg("separator") or req.arg("seperator") or ""
        return lambda view: view.body(keys=keys, separator=separator)
    health = req.path.startswith(_HEALTH)
    keep = filter_predicate(req, CHECK_SERVICE_NODE if health else SERVICE_NODE)
    tags = req.args("tag")
    meta = node_meta_args(req)
    if not health:
        return lambda view: (200, view.kept(key, lambda: view.catalog_body(tags, meta, keep=keep)))
    passing = req.flag("passing") and req.arg("passing") not in ("false", "0")
    return lambda view: (200, view.body(tags, meta, passing=passing, keep=keep, key=key))
