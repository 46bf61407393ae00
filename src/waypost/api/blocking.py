"""The one helper every read endpoint goes through: consistency, blocking, headers, caching.

Rules (Consul's, from its blocking-query implementation):
1. ``?index`` absent or 0: answer at once.
2. Otherwise run the query; answer when its index is above ``index``. If not, park on the
   query's topics until one changes or ``wait`` (default 5m, max 10m, plus up to wait/16
   jitter) runs out; then answer with whatever the query gives (same index on timeout).
3. The index is never 0.
4. A query declares the topics its answer depends on. Only writes to those topics wake
   it; unrelated writes cost a parked reader nothing.

Answers are cached as encoded bytes per request (path and query, minus the blocking
parameters) and reused while none of their topics changed, so a hot read is a dict
look-up, and 10,000 woken watchers of one service share one encoding.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from waypost.api.common import error_response, parse_consistency, parse_uint, query_duration
from waypost.api.http import Request, Response
from waypost.state.state import State
from waypost.state.watch import Topic, Topics, Waiter

__all__ = ["QueryResult", "ReadCache", "blocking_read"]

DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0


@dataclass(slots=True)
class QueryResult:
    index: int
    topics: tuple[Topic, ...]
    body: bytes
    status: int = 200
    content_type: str = "application/json"
    answered: dict[tuple[str, str, str], Response] = field(default_factory=dict)
    """Responses already built from this result, by their varying headers, so the 10,000
    watchers a change wakes share one response and one encoding of it."""


Query = Callable[[], QueryResult]


class ReadCache:
    """Encoded answers keyed by request; an entry is valid while its topics are unchanged."""

    def __init__(self, size: int = 4096, *, acl_policy: str = "allow") -> None:
        self._entries: OrderedDict[str, tuple[int, QueryResult]] = OrderedDict()
        self._size = size
        self.acl_policy = acl_policy
        """X-Consul-Default-Acl-Policy: the agent's ACL default policy ("allow" with ACLs off)."""

    def get(self, key: str, state: State) -> QueryResult | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        computed_at, result = hit
        topics = state.indexes.topics
        for topic in result.topics:
            if topics.index(topic) > computed_at:
                return None
        return result

    def put(self, key: str, state: State, result: QueryResult) -> None:
        state.indexes.topics.track(result.topics)
        entries = self._entries
        entries[key] = (state.indexes.revision, result)
        entries.move_to_end(key)
        if len(entries) > self._size:
            entries.popitem(last=False)


_BLOCKING_PARAMS = frozenset(
    {"index", "wait", "stale", "consistent", "leader", "cached", "max_stale", "pretty"}
)


def _cache_key(req: Request) -> str:
    if not req.raw_query:
        return req.path
    parts = sorted(f"{k}={v}" for k, vs in req.query.items() if k not in _BLOCKING_PARAMS for v in vs)
    return req.path + "?" + "&".join(parts)


def _run(state: State, cache: ReadCache | None, key: str, query: Query) -> QueryResult:
    if cache is not None:
        hit = cache.get(key, state)
        if hit is not None:
            return hit
    result = query()
    if cache is not None:
        cache.put(key, state, result)
    return result


def _headers(key: tuple[str, str, str], result: QueryResult, acl_policy: str) -> list[tuple[str, str]]:
    consistency, leader, contact = key
    return [
        ("X-Consul-Index", str(max(1, result.index))),
        ("X-Consul-Knownleader", leader),
        ("X-Consul-Lastcontact", contact),
        ("X-Consul-Effective-Consistency", consistency),
        ("X-Consul-Default-Acl-Policy", acl_policy),
    ]


def _respond(state: State, result: QueryResult, consistency: str, cache: ReadCache | None) -> Response:
    leader = "true" if state.indexes.leader is not None else "false"
    key = (consistency, leader, str(state.last_contact_ms()))
    resp = result.answered.get(key)
    if resp is None:
        policy = cache.acl_policy if cache is not None else "allow"
        resp = Response(result.body, result.status, result.content_type, _headers(key, result, policy))
        result.answered[key] = resp
    return resp


def blocking_read(
    state: State,
    req: Request,
    query: Query,
    *,
    cache: ReadCache | None = None,
    rng: random.Random | None = None,
) -> Response | asyncio.Future[Response]:
    """Answer a read; synchronously when it need not wait (the fast path), else a future."""
    consistency = parse_consistency(req)
    min_index = parse_uint(req, "index")
    wait = query_duration(req, "wait", "Invalid wait time")
    key = _cache_key(req)
    if consistency != "consistent":
        if min_index == 0:
            return _respond(state, _run(state, cache, key, query), consistency, cache)
        first = _run(state, cache, key, query)
        if first.index > min_index:
            return _respond(state, first, consistency, cache)
    timeout = DEFAULT_WAIT if wait is None or wait <= 0 else min(wait, MAX_WAIT)
    timeout += (rng or random).uniform(0, timeout / 16)
    parked = _Parked(state, query, cache, key, min_index, timeout, consistency)
    if consistency == "consistent":
        return asyncio.ensure_future(_after_catch_up(state, parked))
    parked.attempt()
    return parked.answer


async def _after_catch_up(state: State, parked: _Parked) -> Response:
    await state.catch_up()
    parked.attempt()
    return await parked.answer


class _Parked:
    """One blocking query waiting for its topics, driven by callbacks rather than a task:
    10,000 parked readers then cost a future and a timer handle each, and a change
    reaches them in one scheduling hop."""

    __slots__ = ("_cache", "_consistency", "_deadline", "_key", "_min", "_query", "_state", "_timer",
                 "_topics", "_waiter", "answer")  # fmt: skip

    def __init__(
        self,
        state: State,
        query: Query,
        cache: ReadCache | None,
        key: str,
        min_index: int,
        timeout: float,
        consistency: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._state = state
        self._query = query
        self._cache = cache
        self._key = key
        self._min = min_index
        self._deadline = loop.time() + timeout
        self._consistency = consistency
        self._waiter: Waiter | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._topics: Topics | None = None
        self.answer: asyncio.Future[Response] = loop.create_future()
        self.answer.add_done_callback(self._finished)

    def attempt(self) -> None:
        if self.answer.done():
            return
        try:
            result = _run(self._state, self._cache, self._key, self._query)
        except Exception as exc:
            self.answer.set_result(error_response(exc))
            return
        loop = asyncio.get_running_loop()
        if self._min == 0 or result.index > self._min or loop.time() >= self._deadline:
            self.answer.set_result(_respond(self._state, result, self._consistency, self._cache))
            return
        self._topics = self._state.indexes.topics
        self._waiter = self._topics.park(result.topics, self._woken)
        self._timer = loop.call_at(self._deadline, self._waiter.wake)

    def _woken(self) -> None:
        self._release()
        self.attempt()

    def _finished(self, _: asyncio.Future[Response]) -> None:
        """Answered, or the client went away: stop waiting either way."""
        self._release()

    def _release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiter is not None and self._topics is not None:
            self._topics.unpark(self._waiter)
            self._waiter = None
