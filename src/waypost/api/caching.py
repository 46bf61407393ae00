"""Consul's agent caching (``?cached``): which reads cache and how, and the ``X-Cache`` and
``Age`` headers that Consul's clients read (the Go API's ``UseCache`` and ``CacheHit``).

Consul's client agents keep a cache in front of their servers. A server agent here already
answers reads from its replica of the catalog, kept current by the store's watch, so for
Consul's "background refresh" endpoints the replica is the cache: only the request keys
seen are kept (a key's first answer is a MISS, later ones HIT, as Consul's entries are),
and ``Age`` is how long the replica has gone without hearing from the store (0 while its
watch is live). "Simple" endpoints, whose answers are not kept current, keep each answer
with the time it was fetched; ``Cache-Control`` says when to fetch again and when a failed
fetch may still be answered from the old one.

A lean client agent holds no replica of the catalog: its background-refresh answers come
from a :class:`BackgroundSource` (``agent.lean_cache``), entries each kept current by a
blocking query to a server, as Consul's client agents keep theirs; its simple answers are
kept here around the relay to a server, with the same rules as on a server.

Consul sets these headers only on the endpoints its documentation marks, and only with
``?cached``, except the agent's Connect endpoints, which it always answers from its cache.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from waypost.api.blocking import request_key
from waypost.api.common import CacheControl, error_response, parse_cache_control
from waypost.api.gate import request_secret
from waypost.api.http import Request, Response

__all__ = ["BACKGROUND", "CACHED_ROUTES", "SIMPLE", "AgentCache", "BackgroundSource", "Caching", "Ticket"]

SIMPLE = "simple"
BACKGROUND = "background refresh"

TTL = 72 * 3600.0
"""Consul's ``LastGetTTL``: an entry nobody asked for in 3 days is dropped."""

MAX_KEYS = 16_384
"""Background-refresh request keys kept (each only its key and a time, about 0.2 KB)."""

MAX_ANSWERS = 1024
MAX_ANSWER_BYTES = 16 << 20
"""Simple-caching answers kept, and the bodies' total size; the least recently used go first."""

MAX_REFRESHED = 1024
"""A lean client agent's background-refresh entries (each an answer and one blocking query
parked on a server); the least recently read go first."""

REFRESH_IDLE = 600.0
"""Seconds a lean client agent's entry may go unread before its blocking query stops and it
goes: far below ``TTL``, as each entry holds a query open on a server."""


@dataclass(frozen=True, slots=True)
class Caching:
    """One endpoint's agent caching, as its Consul documentation's table gives it."""

    kind: str
    always: bool = False
    """Answered from the cache with or without ``?cached`` (Consul's agent Connect reads)."""
    suffix: str = ""
    """Only requests whose path ends so: a prepared query's ``/execute``."""


CACHED_ROUTES: dict[str, Caching] = {
    "/v1/catalog/datacenters": Caching(SIMPLE),
    "/v1/catalog/services": Caching(BACKGROUND),
    "/v1/catalog/service/:name": Caching(BACKGROUND),
    "/v1/catalog/connect/:service": Caching(BACKGROUND),
    "/v1/health/service/:service": Caching(BACKGROUND),
    "/v1/health/connect/:service": Caching(BACKGROUND),
    "/v1/health/ingress/:service": Caching(BACKGROUND),
    "/v1/query/:id": Caching(SIMPLE, suffix="/execute"),
    "/v1/connect/intentions/match": Caching(BACKGROUND),
    "/v1/discovery-chain/:service": Caching(BACKGROUND),
    "/v1/agent/connect/ca/roots": Caching(BACKGROUND, always=True),
    "/v1/agent/connect/ca/leaf/:service": Caching(BACKGROUND, always=True),
}
"""Route paths (as ``routes.ROUTES`` spells them) with Consul's agent caching; ``?cached``
elsewhere is accepted and changes nothing, as on Consul."""

Answer = Response | Awaitable[Response]


class BackgroundSource(Protocol):
    """A lean client agent's background-refresh entries (``agent.lean_cache``)."""

    def read(self, key: str, req: Request) -> Awaitable[tuple[Response, float | None]]:
        """The answer to ``req`` (cache key ``key``) and its ``Age`` if it is a HIT, or None
        for a MISS (fetched from a server, or waited on for a change)."""
        ...


_CACHE_HEADERS = frozenset({"X-Cache", "Age"})


@dataclass(slots=True)
class _Kept:
    response: Response
    fetched: float
    used: float


class AgentCache:
    """One agent's cache state: the background keys seen and the simple answers kept.

    ``contact_age`` is seconds since the replica last heard from the store; ``clock`` a
    monotonic clock (both given so the rules can be tested without waiting days);
    ``source`` a lean client agent's background-refresh entries, None where the replica
    is the cache."""

    def __init__(
        self,
        contact_age: Callable[[], float],
        *,
        source: BackgroundSource | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
        max_answers: int = MAX_ANSWERS,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.contact_age = contact_age
        self.source = source
        self.clock = clock
        self._keys: OrderedDict[str, float] = OrderedDict()
        self._answers: OrderedDict[str, _Kept] = OrderedDict()
        self._answer_bytes = 0
        self._limits = (max_keys, max_answers, max_answer_bytes)

    def __len__(self) -> int:
        return len(self._keys) + len(self._answers)

    def through(
        self, caching: Caching, req: Request, fetch: Callable[[], Answer], *, relayed: bool = False
    ) -> Answer:
        """``req`` answered through the cache, ``fetch`` (the handler, or with ``relayed``
        the relay to a server) called only when the cache cannot answer it itself."""
        try:
            opened = self.open(caching, req, relayed=relayed)
        except Exception as exc:
            return error_response(exc)
        if opened is not None and not isinstance(opened, Ticket):
            return opened
        try:
            answer = fetch()
        except Exception as exc:
            answer = error_response(exc)
        return answer if opened is None else opened.close(answer)

    def open(self, caching: Caching, req: Request, *, relayed: bool = False) -> Ticket | Answer | None:
        """Before the handler runs: None when this request does not use the cache, the
        cache's own answer (a kept simple answer, or for a request a lean client relays its
        background entry), else the ticket that :meth:`Ticket.close` settles with the
        handler's answer."""
        if req.method not in ("GET", "HEAD") or not req.path.endswith(caching.suffix):
            return None
        if not caching.always and "cached" not in req.query:
            return None
        control = parse_cache_control(req)
        key = f"{request_key(req)}\0{request_secret(req)}"
        now = self.clock()
        if caching.kind == BACKGROUND:
            if relayed and self.source is not None:
                return _sourced(self.source.read(key, req))
            seen = self._keys.get(key)
            fresh = seen is not None and now - seen <= TTL
            return Ticket(self, key, fresh, _blocking(req), None, None)
        kept = self._answers.get(key)
        if kept is not None and now - kept.used > TTL:
            self._drop(key)
            kept = None
        if kept is not None:
            age = now - kept.fetched
            if not control.must_revalidate and (control.max_age <= 0 or age <= control.max_age):
                kept.used = now
                self._answers.move_to_end(key)
                return _marked(kept.response, age)
        return Ticket(self, key, False, False, control, kept)

    def remember_key(self, key: str) -> None:
        """A background key answered: kept (and its TTL restarted) as the most recent."""
        now = self.clock()
        keys = self._keys
        keys[key] = now
        keys.move_to_end(key)
        while keys:
            oldest, used = next(iter(keys.items()))
            if len(keys) <= self._limits[0] and now - used <= TTL:
                return
            del keys[oldest]

    def keep(self, key: str, response: Response) -> None:
        """A simple answer fetched: kept as the most recent, the least recently used (or
        any unused for the TTL) dropped past the limits, this one too if it alone is over."""
        now = self.clock()
        self._drop(key)
        answers = self._answers
        answers[key] = _Kept(response, now, now)
        self._answer_bytes += len(response.body)
        _, max_answers, max_bytes = self._limits
        while answers:
            oldest, kept = next(iter(answers.items()))
            if len(answers) <= max_answers and self._answer_bytes <= max_bytes and now - kept.used <= TTL:
                return
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        kept = self._answers.pop(key, None)
        if kept is not None:
            self._answer_bytes -= len(kept.response.body)


@dataclass(slots=True)
class Ticket:
    """One request through the cache, settled by :meth:`close` with the handler's answer."""

    cache: AgentCache
    key: str
    seen: bool
    blocking: bool
    """Asked with ``?index``: an answer that had to wait for a change is a MISS, as Consul
    counts it, even on a key seen before."""
    control: CacheControl | None
    """The request's Cache-Control on a simple endpoint; None on a background one."""
    kept: _Kept | None

    def close(self, answer: Answer) -> Answer:
        if isinstance(answer, Response):
            return self._settle(answer, waited=False)
        return self._later(answer)

    async def _later(self, pending: Awaitable[Response]) -> Response:
        try:
            resp = await pending
        except Exception as exc:  # a failed fetch, which stale-if-error may still answer
            resp = error_response(exc)
        return self._settle(resp, waited=self.blocking)

    def _settle(self, resp: Response, *, waited: bool) -> Response:
        cache = self.cache
        if self.control is None:
            if resp.status != 200:
                return resp
            cache.remember_key(self.key)
            return _marked(resp, cache.contact_age() if self.seen and not waited else None)
        if resp.status == 200:
            cache.keep(self.key, resp)
            return _marked(resp, None)
        kept = self.kept
        if kept is not None and resp.status >= 500:
            age = cache.clock() - kept.fetched
            if self.control.stale_if_error > age:
                return _marked(kept.response, age)
        return resp


async def _sourced(pending: Awaitable[tuple[Response, float | None]]) -> Response:
    """A lean client's background-refresh answer with its headers; errors unmarked."""
    try:
        resp, age = await pending
    except Exception as exc:
        return error_response(exc)
    return _marked(resp, age) if resp.status == 200 else resp


def _blocking(req: Request) -> bool:
    """Whether ``?index`` asks to wait (a malformed one is the handler's to refuse)."""
    raw = req.arg("index") or "0"
    return not (raw.isascii() and raw.isdigit()) or int(raw) > 0


def _marked(resp: Response, age: float | None) -> Response:
    """``resp`` with Consul's ``X-Cache`` (``HIT`` with an ``Age`` in whole seconds, rounded
    as Go's ``%.0f``, or ``MISS``); a copy, as answers are shared between requests. A
    server's own, on an answer a client agent relayed from it, gives way to this agent's."""
    kept = [h for h in resp.headers if h[0] not in _CACHE_HEADERS]
    extra = [("X-Cache", "MISS")] if age is None else [("X-Cache", "HIT"), ("Age", f"{age:.0f}")]
    return Response(resp.body, resp.status, resp.content_type, [*kept, *extra], head=resp.head)
