"""One watch per distinct dependency, shared by every template, feeding the brain.

A dependency is read with a blocking query (``waypost.client``'s ``watch``: Consul's index
rules, back-off and one log line per failure streak while the agent is away); files and
the datacenter list have no index and are polled. In ``once`` mode each dependency is read
once, with a bounded number of retries, so an agent that is gone fails the run instead
of hanging it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from waypost.client import ApiClient, ApiError, Backoff
from waypost.durations import format_duration
from waypost.template.deps import Dependency

__all__ = ["Watcher"]

log = logging.getLogger("waypost.template")

POLL_INTERVAL = 15.0
"""consul-template's sleep between reads of index-less data (the datacenter list)."""
FILE_POLL_INTERVAL = 1.0
ONCE_ATTEMPTS = 5


class Watcher:
    """Starts and stops one task per dependency; ``on_change`` runs after each new value."""

    def __init__(
        self,
        api: ApiClient,
        *,
        on_change: Callable[[], None],
        once: bool = False,
        block_wait: float = 60.0,
        stale: bool = False,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.api = api
        self.on_change = on_change
        self.once = once
        self.block_wait = block_wait
        self.stale = stale
        self.backoff = backoff
        self.brain: dict[Dependency, Any] = {}
        self.changed: set[Dependency] = set()
        """Dependencies whose data changed since the runner last took this set."""
        self.tasks: dict[Dependency, asyncio.Task[None]] = {}
        self.error: Exception | None = None
        self._agent_node = ""

    @property
    def active(self) -> int:
        """Open watches: one per distinct dependency (what the benchmark counts)."""
        return sum(1 for t in self.tasks.values() if not t.done())

    def ensure(self, deps: set[Dependency]) -> None:
        for dep in deps:
            if dep not in self.tasks:
                self.tasks[dep] = asyncio.create_task(self._run(dep), name=f"watch {dep}")

    def retain(self, deps: set[Dependency]) -> None:
        """Stop the watches no template uses any more, and forget their data."""
        for dep in list(self.tasks):
            if dep not in deps:
                self.tasks.pop(dep).cancel()
                self.brain.pop(dep, None)

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()

    def _store(self, dep: Dependency, value: Any) -> None:
        if dep in self.brain and self.brain[dep] == value:
            return
        self.brain[dep] = value
        self.changed.add(dep)
        self.on_change()

    def _fail(self, dep: Dependency, err: Exception) -> None:
        log.error("%s: %s", dep, err)
        if self.error is None:
            self.error = err
        self.on_change()

    async def _run(self, dep: Dependency) -> None:
        try:
            if dep.kind == "file":
                await self._poll_file(dep)
            elif self.once:
                await self._read_once(dep)
                if dep.kind == "kv.get" and self.brain.get(dep) is None:
                    await self._block(dep)  # -once waits for a missing key, as consul-template does
            elif not dep.blocking:
                await self._poll(dep)
            else:
                await self._block(dep)
        except asyncio.CancelledError:
            raise
        except (ApiError, ValueError, TypeError, KeyError, AttributeError) as err:
            self._fail(dep, err)

    async def _request(self, dep: Dependency) -> tuple[str, list[tuple[str, str]]]:
        path, params = dep.request()
        if dep.kind == "catalog.node" and not dep.name:
            if not self._agent_node:
                info = (await self.api.get("/v1/agent/self")).json()
                self._agent_node = str(info["Config"]["NodeName"])
            path += self._agent_node
        if self.stale:
            params = [*params, ("stale", "1")]
        return path, params

    async def _read_once(self, dep: Dependency) -> None:
        backoff = self.backoff()
        for attempt in range(1, ONCE_ATTEMPTS + 1):
            try:
                path, params = await self._request(dep)
                resp = await self.api.request("GET", path, query=params)
                if resp.status >= 400 and resp.status != 404:
                    raise ApiError(resp.status, resp.body.decode(errors="replace").strip())
                self._store(dep, dep.decode(resp.status, resp.json()))
                return
            except ApiError as err:
                if (err.status != 0 and err.status < 500) or attempt == ONCE_ATTEMPTS:
                    raise
                delay = backoff.next()
                log.warning("%s: %s; retry %d/%d in %.1fs", dep, err, attempt, ONCE_ATTEMPTS - 1, delay)
                await asyncio.sleep(delay)

    async def _block(self, dep: Dependency) -> None:
        path, params = await self._request(dep)
        wait = format_duration(self.block_wait)
        async for resp in self.api.watch(path, params, wait=wait, backoff=self.backoff(), accept=(404,)):
            self._store(dep, dep.decode(resp.status, resp.json()))

    async def _poll(self, dep: Dependency) -> None:
        backoff = self.backoff()
        while True:
            try:
                path, params = await self._request(dep)
                resp = await self.api.get(path, params)
                self._store(dep, dep.decode(resp.status, resp.json()))
                backoff.reset()
                await asyncio.sleep(POLL_INTERVAL)
            except ApiError as err:
                if 0 < err.status < 500:
                    raise
                await asyncio.sleep(backoff.next())

    async def _poll_file(self, dep: Dependency) -> None:
        """consul-template's ``file``: no data until the file exists, then its contents."""
        while True:
            try:
                self._store(dep, await asyncio.to_thread(_read_text, dep.name))
            except FileNotFoundError:
                pass
            except OSError as err:
                self._fail(dep, err)
                return
            if self.once and dep in self.brain:
                return
            await asyncio.sleep(FILE_POLL_INTERVAL)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()
