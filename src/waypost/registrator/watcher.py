"""The registrator's loops: follow the engine, keep the agent in step, refresh TTLs.

Events only say *which* container changed; the watcher then inspects it and reconciles
its services, so an event that arrives twice or out of order does no harm, and a
missed one is caught by the next full sync. A full sync (start, every reconnection to
the engine, ``-resync``) marks every running container and every container with
services on record. Marked containers go through a coalescing queue served by a few
workers: a burst of 500 starts is handled in parallel, while one container is never
reconciled twice at once.

Registrator itself exits when the event stream closes; here a closed stream, an engine
restart or an agent restart is retried with back-off and a log line per outage, and
the agent's list of services is polled so that an agent that restarted empty gets its
services back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from waypost.client import ApiClient, ApiError, Backoff
from waypost.registrator.engine import Engine, EngineError, event_action
from waypost.registrator.reconciler import Reconciler
from waypost.registrator.services import ContainerError, Desired, Options, container_name, desired_services

__all__ = ["ACTIONS", "Registrator", "Settings"]

log = logging.getLogger("waypost.registrator")

ACTIONS = frozenset(
    {"start", "die", "stop", "kill", "destroy", "remove", "pause", "unpause", "health_status"}
)
"""Events that can change what a container should have registered (podman says ``remove``
where Docker says ``destroy``)."""
HEALTH_RECHECKS = (0.25, 1.0, 3.0)
"""Seconds after a health event at which the container is inspected again."""
HEALTH_REFRESH = 600.0
"""Seconds between re-assertions of mirrored HEALTHCHECK states without ``-ttl-refresh``."""
_SIGNALLED = 128


@dataclass(frozen=True)
class Settings:
    options: Options
    deregister: str = "always"
    resync: float = 0.0
    cleanup: bool = False
    ttl_refresh: float = 0.0
    workers: int = 16
    agent_poll: float = 2.0
    """Seconds between reads of the agent's services, to notice an agent that lost them."""


def _keep_exited(state: dict[str, Any]) -> bool:
    """``-deregister on-success``: a container that failed on its own keeps its services."""
    code = state.get("ExitCode")
    return isinstance(code, int) and code != 0 and code & _SIGNALLED != _SIGNALLED


class Registrator:
    def __init__(self, engine: Engine, api: ApiClient, settings: Settings) -> None:
        self.engine = engine
        self.api = api
        self.settings = settings
        self.reconciler = Reconciler(api, settings.options.hostname)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._agent_ok = asyncio.Event()
        self._agent_ok.set()

    async def connect(self, attempts: int, interval: float) -> None:
        """Registrator's start-up: ask for the leader until it answers, ``attempts`` more
        times (-1: forever), ``interval`` seconds apart; the last failure is raised."""
        attempt = 0
        while True:
            log.info("Connecting to backend (%d/%d)", attempt, attempts)
            try:
                leader = (await self.api.get("/v1/status/leader")).json()
            except ApiError:
                if attempts != -1 and attempt >= attempts:
                    raise
            else:
                log.info("consul: current leader %s", leader)
                return
            await asyncio.sleep(interval)
            attempt += 1

    async def run(self) -> None:
        """Follow the engine until cancelled."""
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.settings.workers)]
        tasks.append(asyncio.create_task(self._poll_agent()))
        if self.settings.resync > 0:
            tasks.append(asyncio.create_task(self._every(self.settings.resync, self._resync)))
        refresh = self.settings.ttl_refresh if self.settings.options.ttl else HEALTH_REFRESH
        tasks.append(asyncio.create_task(self._every(refresh, self._refresh)))
        try:
            await self._follow_engine()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def mark(self, cid: str) -> None:
        if cid in self._running:
            self._again.add(cid)
        elif cid not in self._queued:
            self._queued.add(cid)
            self._queue.put_nowait(cid)

    async def _follow_engine(self) -> None:
        backoff = Backoff(initial=0.5, maximum=30.0)
        failing = False
        while True:
            try:
                async for event in self.engine.events():
                    if not event:
                        if failing:
                            log.info("engine at %s answers again; syncing", self.engine.host)
                        failing = False
                        backoff.reset()
                        await self.sync()
                        continue
                    cid, action = event_action(event)
                    if cid and action in ACTIONS:
                        self.mark(cid)
                        if action == "health_status":
                            self._look_again(cid)
                reason = f"event stream from {self.engine.host} closed"
            except EngineError as exc:
                reason = str(exc)
            delay = backoff.next()
            if not failing:
                log.warning("%s; reconnecting with back-off", reason)
            failing = True
            await asyncio.sleep(delay)

    def _look_again(self, cid: str) -> None:
        """podman records a health result (its event) and the state that inspect reads in
        separate steps, so the inspect right after the event can still show the old status:
        look again a little later, a bounded number of times."""
        loop = asyncio.get_running_loop()
        for delay in HEALTH_RECHECKS:
            loop.call_later(delay, self.mark, cid)

    async def sync(self) -> None:
        """Mark every running container and every one with services on record; with
        ``-cleanup``, remove this host's dangling Registrator entries first."""
        with contextlib.suppress(ApiError):
            services, serial = await self.reconciler.agent_services()
            self.reconciler.adopt(services, serial)
            if self.settings.cleanup:
                await self.reconciler.cleanup(services)
        running = await self.engine.running()
        log.info("Syncing services on %d containers", len(running))
        for cid in [*running, *self.reconciler.registered]:
            self.mark(cid)

    async def _resync(self) -> None:
        try:
            await self.sync()
        except EngineError as exc:
            log.warning("resync skipped: %s", exc)

    async def _refresh(self) -> None:
        with contextlib.suppress(ApiError):
            await self.reconciler.refresh()

    async def _every(self, seconds: float, action: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            await action()

    async def _poll_agent(self) -> None:
        """Every ``agent_poll`` seconds while the agent answers, with back-off while it does
        not; an answer wakes the workers waiting for it."""
        backoff = Backoff(initial=0.5, maximum=5.0)
        while True:
            await asyncio.sleep(self.settings.agent_poll if self._agent_ok.is_set() else backoff.next())
            try:
                services, serial = await self.reconciler.agent_services()
            except ApiError as exc:
                self._agent_failed(exc)
                continue
            backoff.reset()
            self._agent_answered()
            for cid in self.reconciler.adopt(services, serial):
                self.mark(cid)

    def _agent_failed(self, exc: ApiError) -> None:
        if self._agent_ok.is_set():
            log.warning("agent: %s; retrying with back-off", exc)
        self._agent_ok.clear()

    def _agent_answered(self) -> None:
        if not self._agent_ok.is_set():
            log.info("agent at %s answers again", self.api.address.url)
        self._agent_ok.set()

    async def _worker(self) -> None:
        while True:
            cid = await self._queue.get()
            self._queued.discard(cid)
            self._running.add(cid)
            try:
                await self._reconcile(cid)
            except ApiError as exc:
                if 400 <= exc.status < 500:
                    log.error("container %s: %s", cid[:12], exc)
                else:
                    self._agent_failed(exc)
                    self._again.add(cid)
                    await self._agent_ok.wait()
            except EngineError as exc:
                # An engine that went away breaks the event stream too; the sync after
                # reconnecting marks every container again.
                log.warning("container %s: %s; left until the next sync", cid[:12], exc)
            except Exception:
                # Inspect JSON no rule foresaw must cost this container, not a worker.
                log.exception("container %s: unexpected error; skipped", cid[:12])
            finally:
                self._running.discard(cid)
                if cid in self._again:
                    self._again.discard(cid)
                    self.mark(cid)

    async def _reconcile(self, cid: str) -> None:
        container = await self.engine.inspect(cid)
        name = container_name(container) if container else cid[:12]
        await self.reconciler.apply(cid, name, self._desired(container))

    def _desired(self, container: dict[str, Any] | None) -> list[Desired] | None:
        if container is None:
            return []
        state = container.get("State") or {}
        if state.get("Running") and not state.get("Paused"):
            try:
                return desired_services(container, self.settings.options)
            except ContainerError as exc:
                log.error("%s; skipped", exc)
                return []
        if self.settings.deregister == "on-success" and _keep_exited(state):
            return None
        return []
