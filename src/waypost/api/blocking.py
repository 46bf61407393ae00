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
import heapq
import math
import random
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from waypost.api.common import (
    error_response,
    parse_cache_control,
    parse_consistency,
    parse_uint,
    query_duration,
)
from waypost.api.http import Request, Response
from waypost.state.state import State
from waypost.state.watch import Topic, Topics, Waiter

__all__ = ["QueryResult", "ReadCache", "blocking_read", "request_key"]

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


def request_key(req: Request) -> str:
    """The request as its answer depends on it: path and query, less the blocking and
    consistency parameters (sorted, so the order they came in does not matter)."""
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
    parse_cache_control(req)  # refused when malformed on every read, as Consul's parse() does
    min_index = parse_uint(req, "index", invalid="Invalid index")
    wait = query_duration(req, "wait", "Invalid wait time")
    key = request_key(req)
    first = None
    if consistency != "consistent":
        first = _run(state, cache, key, query)
        if min_index == 0 or first.index > min_index:
            return _respond(state, first, consistency, cache)
    timeout = DEFAULT_WAIT if wait is None or wait <= 0 else min(wait, MAX_WAIT)
    timeout += (rng or random).uniform(0, timeout / 16)
    deadline = asyncio.get_running_loop().time() + timeout
    read = _Read(state, cache, key, query)
    if first is None:
        return asyncio.ensure_future(_after_catch_up(read, min_index, deadline, consistency))
    return _parking(state).park(read, first, min_index, deadline, consistency)


@dataclass(slots=True)
class _Read:
    state: State
    cache: ReadCache | None
    key: str
    query: Query

    def run(self) -> QueryResult:
        return _run(self.state, self.cache, self.key, self.query)

    def respond(self, result: QueryResult, consistency: str) -> Response:
        return _respond(self.state, result, consistency, self.cache)


async def _after_catch_up(read: _Read, min_index: int, deadline: float, consistency: str) -> Response:
    await read.state.catch_up()
    try:
        result = read.run()
    except Exception as exc:
        return error_response(exc)
    if min_index == 0 or result.index > min_index or asyncio.get_running_loop().time() >= deadline:
        return read.respond(result, consistency)
    return await _parking(read.state).park(read, result, min_index, deadline, consistency)


_PARKINGS: weakref.WeakKeyDictionary[State, _Parking] = weakref.WeakKeyDictionary()


def _parking(state: State) -> _Parking:
    parking = _PARKINGS.get(state)
    if parking is None:
        parking = _PARKINGS[state] = _Parking()
    return parking


class _Parked(asyncio.Future[Response]):
    """A parked query: its answer future, which also holds what its group and the deadline
    heap need to know of it, so a parked query is one object (the heap orders them by
    deadline) and an entry in its group."""

    __slots__ = ("consistency", "deadline", "group", "min_index")

    def __init__(self, group: _Group, min_index: int, deadline: float, consistency: str) -> None:
        super().__init__(loop=group.loop)
        self.group = group
        self.min_index = min_index
        self.deadline = deadline
        self.consistency = consistency

    def __lt__(self, other: _Parked) -> bool:
        return self.deadline < other.deadline

    def cancel(self, msg: Any | None = None) -> bool:
        """The client went away (its connection, or a wrapper awaiting this, cancels it):
        leave the group now. Hooked here rather than as a done callback, which would cost
        every parked query a callback entry beside the connection's."""
        if not super().cancel(msg):
            return False
        self.group.left(self)
        return True


class _Parking:
    """Every parked blocking query of one state: queries of one read (one cache key) wait
    together in a ``_Group``, and all deadlines are in one heap behind one timer.

    A parked query is then its ``_Parked`` answer, its entry in its group and its
    slot in the heap; the request, the query closure, the waiter and the timer are shared,
    so 5,000 watchers of one service cost one of each (measured in bench/memory_bench.py)."""

    __slots__ = ("_heap", "_timer", "_when", "done", "groups")

    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {}
        self._heap: list[_Parked] = []
        self._timer: asyncio.TimerHandle | None = None
        self._when = math.inf
        self.done = 0
        """Queries answered or abandoned since the heap was last compacted: their entries
        stay in the heap until their deadline, or until they are most of it."""

    def park(
        self, read: _Read, result: QueryResult, min_index: int, deadline: float, consistency: str
    ) -> asyncio.Future[Response]:
        group = self.groups.get(read.key) if read.cache is not None else None
        if group is None:
            group = _Group(self, read)
            if read.cache is not None:
                self.groups[read.key] = group
            group.watch(result.topics)
        answer = group.join(min_index, deadline, consistency)
        heapq.heappush(self._heap, answer)
        if deadline < self._when:
            self._arm(deadline)
        if self.done > 64 and 2 * self.done > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry.done()]
            heapq.heapify(self._heap)
            self.done = 0
        return answer

    def forget(self, group: _Group) -> None:
        if self.groups.get(group.read.key) is group:
            del self.groups[group.read.key]

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._when = when
        self._timer = asyncio.get_running_loop().call_at(when, self._expire)

    def _expire(self) -> None:
        """Answer every query past its deadline with what its read gives now (the same index)."""
        self._timer = None
        self._when = math.inf
        heap = self._heap
        now = asyncio.get_running_loop().time()
        while heap and heap[0].deadline <= now:
            answer = heapq.heappop(heap)
            answer.group.expire(answer)
        if heap:
            self._arm(heap[0].deadline)


class _Group:
    """The parked queries of one read: one waiter on the read's topics, woken once per
    change, which runs the read once and answers every query it moved past."""

    __slots__ = ("_topics", "_waiter", "loop", "members", "parking", "read")

    def __init__(self, parking: _Parking, read: _Read) -> None:
        self.parking = parking
        self.read = read
        self.loop = asyncio.get_running_loop()
        self.members: dict[_Parked, None] = {}
        """A dict as an ordered set: answered in the order they came, and 30-100 bytes
        smaller per entry than a set, which keeps its table far sparser."""
        self._topics: Topics | None = None
        self._waiter: Waiter | None = None

    def join(self, min_index: int, deadline: float, consistency: str) -> _Parked:
        answer = _Parked(self, min_index, deadline, consistency)
        self.members[answer] = None
        self._count()
        return answer

    def watch(self, topics: tuple[Topic, ...]) -> None:
        self._topics = self.read.state.indexes.topics
        self._waiter = self._topics.park(topics, self._woken)
        self._count()

    def expire(self, answer: _Parked) -> None:
        if answer.done():
            return
        self.left(answer)
        try:
            answer.set_result(self.read.respond(self.read.run(), answer.consistency))
        except Exception as exc:
            answer.set_result(error_response(exc))

    def _woken(self) -> None:
        self._release()
        try:
            result = self.read.run()
        except Exception as exc:
            failed = error_response(exc)
            for answer in self._take(self.members):
                answer.set_result(failed)
            return
        moved = [answer for answer in self.members if result.index > answer.min_index]
        for answer in self._take(moved):
            answer.set_result(self.read.respond(result, answer.consistency))
        if self.members:
            self.watch(result.topics)

    def _take(self, moved: Collection[_Parked]) -> list[_Parked]:
        """Remove and return the members ``moved`` names (all of them, or a list of some)."""
        taken = list(moved)
        for answer in taken:
            del self.members[answer]
        self.parking.done += len(taken)
        if not self.members:
            self._close()
        return taken

    def left(self, answer: _Parked) -> None:
        """Answered at its deadline, or the client went away: stop waiting either way."""
        if answer in self.members:
            del self.members[answer]
            self.parking.done += 1
            self._count()
            if not self.members:
                self._close()

    def _count(self) -> None:
        if self._waiter is not None:
            self._waiter.count = len(self.members)

    def _close(self) -> None:
        self._release()
        self.parking.forget(self)

    def _release(self) -> None:
        if self._waiter is not None and self._topics is not None:
            self._topics.unpark(self._waiter)
        self._waiter = None
