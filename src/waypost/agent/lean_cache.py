"""A client agent's background-refresh cache entries: the source behind ``api.caching`` on
a lean client agent, which holds no replica of the catalog to answer from.

Which reads cache, the cache keys, headers and bounds are ``api.caching``'s. Here, as in
Consul's client agents, a key's first read is relayed to a server (a MISS) and its answer
kept; from then on one blocking query per entry keeps it current, and the same read is
answered from it (a HIT, ``Age`` 0 while the refresh reaches a server, else the seconds
since it last did). A cached read with ``?index`` waits on the entry; an answer that had to
wait is a MISS, as Consul counts it. A refresh the server cannot answer keeps the last
answer and retries with back-off; one it refuses (4xx: a token revoked) drops the entry.
Health reads of one service are the exception: a view kept by a delta stream answers them
(``agent.views``). An entry unread for ``REFRESH_IDLE`` seconds stops refreshing and goes; at most
``MAX_REFRESHED`` are kept, the least recently read going first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from waypost.agent.tasks import cancel_all
from waypost.agent.views import Views
from waypost.api.blocking import DEFAULT_WAIT, MAX_WAIT
from waypost.api.caching import MAX_REFRESHED, REFRESH_IDLE
from waypost.api.http import Request, Response, settled
from waypost.durations import parse_duration

__all__ = ["RefreshedReads"]

_REFRESH_WAIT = "5m"
_PER_READ = frozenset({"cached", "index", "wait", "pretty"})
"""Query parameters of one read, not of what it reads."""

Ask = Callable[[Request], "Response | Awaitable[Response]"]


@dataclass
class _Entry:
    answer: Response
    index: int
    used: float
    lost: float | None = None
    """When the refresh last stopped reaching a server; None while it does."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class RefreshedReads:
    """The entries, by ``api.caching``'s cache key; ``ask`` relays a request to a server."""

    def __init__(
        self,
        ask: Ask,
        clock: Callable[[], float] = time.monotonic,
        *,
        views: Views | None = None,
        datacenter: str = "",
    ) -> None:
        self._ask = ask
        self._views = views
        self._datacenter = datacenter
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def read(self, key: str, req: Request) -> tuple[Response, float | None]:
        if self._views is not None and self._views.serves(req, self._datacenter):
            return await self._views.cached(req, lambda: self._relay(req))
        entry = self._entries.get(key)
        if entry is None:
            answer = await self._relay(req)
            if answer.status == 200:
                self._keep(key, req, answer)
            return answer, None
        self._entries.move_to_end(key)
        entry.used = self._clock()
        waited = await self._wait(entry, req)
        lost = entry.lost
        return entry.answer, None if waited else (0.0 if lost is None else self._clock() - lost)

    async def _wait(self, entry: _Entry, req: Request) -> bool:
        """A cached blocking read: until the entry moves past ``?index`` or ``?wait`` ends;
        whether it had to wait."""
        index = req.arg("index")
        if not index or not index.isdigit() or entry.index > int(index):
            return False
        try:
            wait = parse_duration(req.arg("wait") or "") if req.arg("wait") else DEFAULT_WAIT
        except ValueError:
            wait = DEFAULT_WAIT
        wait = DEFAULT_WAIT if wait <= 0 else min(wait, MAX_WAIT)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while entry.index <= int(index):
                    await entry.changed.wait()
        return True

    async def _relay(self, req: Request) -> Response:
        return await settled(self._ask(req))

    def _keep(self, key: str, req: Request, answer: Response) -> None:
        entry = _Entry(answer, _index(answer), self._clock())
        old = self._entries.pop(key, None)
        if old is not None and old.task is not None:
            old.task.cancel()
        self._entries[key] = entry
        while len(self._entries) > MAX_REFRESHED:
            _, gone = self._entries.popitem(last=False)
            if gone.task is not None:
                gone.task.cancel()
        query = urlencode(sorted((k, v) for k, vs in req.query.items() if k not in _PER_READ for v in vs))
        headers = {k: v for k, v in req.headers.items() if k in ("x-consul-token", "authorization")}
        entry.task = asyncio.ensure_future(
            self._refresh(key, entry, Request("GET", req.path, query, headers, b""))
        )

    async def _refresh(self, key: str, entry: _Entry, read: Request) -> None:
        backoff = 0.5
        base = read.raw_query
        while self._clock() - entry.used < REFRESH_IDLE:
            blocking = f"index={entry.index}&wait={_REFRESH_WAIT}"
            again = Request(
                "GET", read.path, f"{base}&{blocking}" if base else blocking, dict(read.headers), b""
            )
            try:
                answer = await self._relay(again)
            except Exception as exc:  # a relay that failed outright: as a server error
                answer = Response.text(f"refresh failed: {exc}", 500)
            if 400 <= answer.status < 500:
                break  # refused now (a token revoked, a name gone): never answer from it again
            if answer.status != 200:
                if entry.lost is None:
                    entry.lost = self._clock()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            entry.answer, entry.lost = answer, None
            index = _index(answer)
            if index != entry.index:
                entry.index = index
                entry.changed.set()
                entry.changed = asyncio.Event()
        if self._entries.get(key) is entry:
            del self._entries[key]

    async def close(self) -> None:
        await cancel_all([e.task for e in self._entries.values() if e.task is not None])
        self._entries.clear()


def _index(answer: Response) -> int:
    return next((int(v) for k, v in answer.headers if k.lower() == "x-consul-index" and v.isdigit()), 0)
