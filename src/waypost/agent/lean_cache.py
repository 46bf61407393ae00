"""``?cached`` on a client agent: Consul's agent cache for the reads it keeps fresh in the
background (``catalog/services``, ``catalog/service``, ``health/service``,
``health/connect``, ``connect/intentions/match``).

The first such read is relayed to a server and answered ``X-Cache: MISS``; from then on a
blocking query per entry keeps it current, and the same read (path, query and token) is
answered from it, ``X-Cache: HIT`` with ``Age`` (seconds since the server last answered).
A cached read with ``?index`` blocks on the entry. ``Cache-Control: max-age=<s>`` refuses
an entry older than that (a fresh relay, MISS). A refresh the server cannot answer keeps
the last answer and retries with back-off; one it refuses (4xx: a token revoked) drops the
entry. An entry unread for ``IDLE`` seconds stops refreshing and goes; at most
``MAX_ENTRIES`` are kept, the least recently read going first. Other paths ignore
``?cached``, as Consul's agent does for the reads it does not cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from waypost.api.blocking import DEFAULT_WAIT, MAX_WAIT
from waypost.api.gate import request_secret
from waypost.api.http import Request, Response
from waypost.durations import parse_duration

__all__ = ["CACHED_PATHS", "IDLE", "MAX_ENTRIES", "CachedReads"]

CACHED_PATHS = (
    "/v1/catalog/services",
    "/v1/catalog/service/",
    "/v1/health/service/",
    "/v1/health/connect/",
    "/v1/connect/intentions/match",
)
IDLE = 600.0
MAX_ENTRIES = 1024
_REFRESH_WAIT = "5m"
_PER_READ = frozenset({"cached", "index", "wait", "pretty"})
"""Query parameters of one read, not of what it reads."""

Ask = Callable[[Request], "Response | Awaitable[Response]"]


@dataclass
class _Entry:
    answer: Response
    index: int
    fetched: float
    used: float
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class CachedReads:
    def __init__(self, ask: Ask, clock: Callable[[], float] = time.monotonic) -> None:
        self._ask = ask
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()

    @staticmethod
    def handles(req: Request) -> bool:
        return req.method == "GET" and req.path.startswith(CACHED_PATHS) and "cached" in req.query

    async def read(self, req: Request) -> Response:
        query = urlencode(sorted((k, v) for k, vs in req.query.items() if k not in _PER_READ for v in vs))
        key = (req.path, query, request_secret(req))
        entry = self._entries.get(key)
        now = self._clock()
        if entry is not None and not self._too_old(req, now - entry.fetched):
            self._entries.move_to_end(key)
            entry.used = now
            await self._wait(entry, req)
            return _marked(entry.answer, "HIT", self._clock() - entry.fetched)
        answer = await self._relay(req, query, 0)
        if answer.status == 200:
            self._keep(key, req, query, answer)
        return _marked(answer, "MISS", 0.0)

    @staticmethod
    def _too_old(req: Request, age: float) -> bool:
        for part in req.headers.get("cache-control", "").split(","):
            name, _, value = part.strip().partition("=")
            if name.lower() == "max-age" and value.isdigit():
                return age > int(value)
        return False

    async def _wait(self, entry: _Entry, req: Request) -> None:
        """A cached blocking read: until the entry moves past ``?index`` or ``?wait`` ends."""
        index = req.arg("index")
        if not index or not index.isdigit() or entry.index > int(index):
            return
        try:
            wait = parse_duration(req.arg("wait") or "") if req.arg("wait") else DEFAULT_WAIT
        except ValueError:
            wait = DEFAULT_WAIT
        wait = DEFAULT_WAIT if wait <= 0 else min(wait, MAX_WAIT)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while entry.index <= int(index):
                    await entry.changed.wait()

    async def _relay(self, req: Request, query: str, index: int) -> Response:
        blocking = f"index={index}&wait={_REFRESH_WAIT}" if index else ""
        raw = "&".join(part for part in (query, blocking) if part)
        headers = {k: v for k, v in req.headers.items() if k in ("x-consul-token", "authorization")}
        answer = self._ask(Request("GET", req.path, raw, headers, b""))
        return answer if isinstance(answer, Response) else await answer

    def _keep(self, key: tuple[str, str, str], req: Request, query: str, answer: Response) -> None:
        now = self._clock()
        entry = _Entry(answer, _index(answer), now, now)
        old = self._entries.pop(key, None)
        if old is not None and old.task is not None:
            old.task.cancel()
        self._entries[key] = entry
        while len(self._entries) > MAX_ENTRIES:
            _, gone = self._entries.popitem(last=False)
            if gone.task is not None:
                gone.task.cancel()
        entry.task = asyncio.ensure_future(self._refresh(key, entry, req, query))

    async def _refresh(self, key: tuple[str, str, str], entry: _Entry, req: Request, query: str) -> None:
        backoff = 0.5
        while self._clock() - entry.used < IDLE:
            try:
                answer = await self._relay(req, query, entry.index)
            except Exception as exc:  # a relay that failed outright: as a server error
                answer = Response.text(f"refresh failed: {exc}", 500)
            if 400 <= answer.status < 500:
                break  # refused now (a token revoked, a name gone): never answer from it again
            if answer.status != 200:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            entry.answer, entry.fetched = answer, self._clock()
            index = _index(answer)
            if index != entry.index:
                entry.index = index
                entry.changed.set()
                entry.changed = asyncio.Event()
        if self._entries.get(key) is entry:
            del self._entries[key]

    async def close(self) -> None:
        tasks = [e.task for e in self._entries.values() if e.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._entries.clear()


def _index(answer: Response) -> int:
    return next((int(v) for k, v in answer.headers if k.lower() == "x-consul-index" and v.isdigit()), 0)


def _marked(answer: Response, cache: str, age: float) -> Response:
    headers = [(k, v) for k, v in answer.headers if k.lower() not in ("x-cache", "age")]
    headers += [("X-Cache", cache), ("Age", str(int(age)))]
    return Response(answer.body, answer.status, answer.content_type, headers)
