"""Upstreams: a service's usable instances, followed by one blocking query per service.

A selector is what a listener wants: the service, its tags, a ``filter`` and the
datacenter. Every listener (built-in or HAProxy) asking for the same service, filter and
datacenter shares one ``UpstreamWatcher`` query, whatever its tags (applied here, as
Consul's ``?tag=`` would); a filter is Consul's expression language, so it goes to the
agent and a filtered listener has a query of its own. Every consumer sees each answer
through a callback that runs before the next accept is balanced, so a change is reflected
in the next new connection. ``applied`` records the index of the answer in force, which the
proxy's status endpoint reports so a caller can wait for a change instead of sleeping.

An instance is usable while none of its checks (node's included) is critical, so
maintenance (a critical check) and deregistration remove it; a warning instance stays
with ``Weights.Warning``, a passing one with ``Weights.Passing``, as Consul's DNS does.
An instance whose weight is 0 asked for no traffic and is left out.

``MetaWatcher`` finds the services whose registrations carry ``Meta.proxy_port``, the
listeners a registration asks for itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from waypost.client import ApiClient, ApiError, Backoff
from waypost.proxy.config import META_PORT_KEY, ListenerConfig

__all__ = ["MetaWatcher", "Selector", "Upstream", "UpstreamUpdate", "UpstreamWatcher", "parse_instances"]

log = logging.getLogger("waypost.proxy")


@dataclass(frozen=True, slots=True)
class Selector:
    service: str
    tags: tuple[str, ...] = ()
    filter: str = ""
    datacenter: str = ""
    virtual: bool = False
    """The instances behind a virtual IP's name, in the same shape (waypost's own read)."""
    connect: bool = False
    """The service's Connect-capable instances (its sidecars), from ``/v1/health/connect``."""

    @classmethod
    def of(cls, listener: ListenerConfig) -> Selector:
        return cls(listener.service, listener.tags, listener.filter, listener.datacenter, listener.virtual)

    @property
    def path(self) -> str:
        if self.virtual:
            base = "/v1/waypost/virtual-ip-instances/"
        else:
            base = "/v1/health/connect/" if self.connect else "/v1/health/service/"
        return base + quote(self.service, safe="")

    @property
    def asked(self) -> Selector:
        """What is asked of the agent: the selector without its tags, which are applied to
        each answer here, so listeners that differ only in tags share one query."""
        return replace(self, tags=()) if self.tags else self

    def keeps(self, upstream: Upstream) -> bool:
        """Consul's ``?tag=``: an instance must carry every tag asked for."""
        return all(tag in upstream.tags for tag in self.tags)

    @property
    def query(self) -> list[tuple[str, str | None]]:
        pairs: list[tuple[str, str | None]] = []
        if self.filter:
            pairs.append(("filter", self.filter))
        if self.datacenter:
            pairs.append(("dc", self.datacenter))
        return pairs


@dataclass(frozen=True, slots=True)
class Upstream:
    address: str
    port: int
    weight: int
    node: str
    service_id: str
    tags: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)
    warning: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """Identity across answers: the same instance keeps its counters and ejection."""
        return (self.node, self.service_id)

    @property
    def target(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class UpstreamUpdate:
    selector: Selector
    index: int
    upstreams: tuple[Upstream, ...]

    @property
    def service(self) -> str:
        return self.selector.service


def _weight(weights: Any, key: str) -> int:
    value = weights.get(key, 1) if isinstance(weights, dict) else 1
    return value if isinstance(value, int) and value >= 0 else 1


def parse_instances(entries: Any) -> tuple[Upstream, ...]:
    """The usable instances of a ``/v1/health/service`` answer, in its order."""
    out: list[Upstream] = []
    for entry in entries if isinstance(entries, list) else ():
        node, svc, checks = entry.get("Node") or {}, entry.get("Service") or {}, entry.get("Checks") or []
        states = {c.get("Status") for c in checks}
        if "critical" in states or not svc.get("Port"):
            continue
        warning = "warning" in states
        weight = _weight(svc.get("Weights"), "Warning" if warning else "Passing")
        if weight == 0:
            continue
        out.append(
            Upstream(
                address=svc.get("Address") or node.get("Address") or "",
                port=int(svc["Port"]),
                weight=weight,
                node=str(node.get("Node", "")),
                service_id=str(svc.get("ID", "")),
                tags=tuple(svc.get("Tags") or ()),
                meta=dict(svc.get("Meta") or {}),
                warning=warning,
            )
        )
    return tuple(out)


Callback = Callable[[UpstreamUpdate], None]


class UpstreamWatcher:
    """One blocking query per service (and filter and datacenter), shared by every listener
    that ``watch``es it whatever its tags; each selector gets the answer cut to its tags."""

    def __init__(self, api: ApiClient, *, wait: str = "5m", backoff: Callable[[], Backoff] = Backoff) -> None:
        self.api = api
        self.wait = wait
        self._backoff = backoff
        self._tasks: dict[Selector, asyncio.Task[None]] = {}
        """Keyed by ``Selector.asked``: one query each."""
        self._users: Counter[Selector] = Counter()
        self._current: dict[Selector, UpstreamUpdate] = {}
        self._answers: dict[Selector, tuple[int, tuple[Upstream, ...]]] = {}
        """The last answer of each query, so a selector that joins it is served at once."""
        self._callbacks: list[Callback] = []

    def on_update(self, callback: Callback) -> None:
        """Call ``callback`` with every answer (and at once with each one already in force)."""
        self._callbacks.append(callback)
        for update in list(self._current.values()):
            callback(update)

    def watch(self, selector: Selector) -> None:
        self._users[selector] += 1
        asked = selector.asked
        if asked not in self._tasks:
            self._tasks[asked] = asyncio.create_task(self._follow(asked), name=f"upstreams {asked.service}")
        elif self._users[selector] == 1 and asked in self._answers:
            self._apply(selector, *self._answers[asked])

    def release(self, selector: Selector) -> None:
        """One user fewer; a query stops with the last selector that shares it."""
        self._users[selector] -= 1
        if self._users[selector] > 0:
            return
        del self._users[selector]
        self._current.pop(selector, None)
        asked = selector.asked
        if any(s.asked == asked for s in self._users):
            return
        self._answers.pop(asked, None)
        task = self._tasks.pop(asked, None)
        if task is not None:
            task.cancel()

    def current(self, selector: Selector) -> UpstreamUpdate | None:
        """The answer in force, or None before the first one."""
        return self._current.get(selector)

    @property
    def applied(self) -> dict[Selector, int]:
        return {s: u.index for s, u in self._current.items()}

    async def updates(self) -> AsyncIterator[UpstreamUpdate]:
        """Every answer from now on (those in force first), for consumers that prefer a loop."""
        queue: asyncio.Queue[UpstreamUpdate] = asyncio.Queue()
        self.on_update(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            self._callbacks.remove(queue.put_nowait)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._users.clear()
        self._answers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _answer(self, asked: Selector, index: int, upstreams: tuple[Upstream, ...]) -> None:
        self._answers[asked] = (index, upstreams)
        for selector in [s for s in self._users if s.asked == asked]:
            self._apply(selector, index, upstreams)

    def _apply(self, selector: Selector, index: int, upstreams: tuple[Upstream, ...]) -> None:
        if selector.tags:
            upstreams = tuple(u for u in upstreams if selector.keeps(u))
        update = UpstreamUpdate(selector, index, upstreams)
        previous = self._current.get(selector)
        self._current[update.selector] = update
        if not update.upstreams and (previous is None or previous.upstreams):
            log.warning(
                "service %r: no passing instances (unknown service or none healthy); waiting for them",
                update.service,
            )
        for callback in list(self._callbacks):
            callback(update)

    async def _follow(self, selector: Selector) -> None:
        backoff = self._backoff()
        while True:
            try:
                answers = self.api.watch(selector.path, selector.query, wait=self.wait, backoff=backoff)
                async for resp in answers:
                    self._answer(selector, resp.index, parse_instances(resp.json()))
            except ApiError as exc:
                # A 4xx (a filter the agent rejects, an ACL denial) may be fixed on the agent's
                # side; keep asking, slowly, with the reason in the log.
                delay = backoff.maximum
                log.error("service %r: the agent refused the upstream query: %s; retrying in %.0fs",
                          selector.service, exc.message, delay)  # fmt: skip
                await asyncio.sleep(delay)


class MetaWatcher:
    """The services whose registrations ask for a listener with ``Meta.proxy_port``.

    One blocking query on ``/v1/catalog/services`` filtered on the meta key; each answer
    re-reads the port of the services in it (the port most of their instances give).
    """

    def __init__(self, api: ApiClient, *, wait: str = "5m") -> None:
        self.api = api
        self.wait = wait

    async def ports(self) -> AsyncIterator[dict[str, int]]:
        query = {"filter": f'"{META_PORT_KEY}" in ServiceMeta'}
        async for resp in self.api.watch("/v1/catalog/services", query, wait=self.wait):
            names = resp.json() or {}
            found: dict[str, int] = {}
            for name in sorted(names):
                port = await self._port(name)
                if port:
                    found[name] = port
            yield found

    async def _port(self, service: str) -> int:
        query = {"filter": f'"{META_PORT_KEY}" in ServiceMeta'}
        try:
            resp = await self.api.get("/v1/catalog/service/" + quote(service, safe=""), query)
        except ApiError as exc:
            log.warning("service %r: cannot read its %s: %s", service, META_PORT_KEY, exc)
            return 0
        votes: Counter[int] = Counter()
        for row in resp.json() or []:
            raw = str((row.get("ServiceMeta") or {}).get(META_PORT_KEY, "")).strip()
            if raw.isdigit() and 0 < int(raw) <= 65535:
                votes[int(raw)] += 1
            else:
                log.warning("service %r: ignoring Meta.%s=%r of %s: not a port", service, META_PORT_KEY, raw,
                            row.get("ServiceID"))  # fmt: skip
        if len(votes) > 1:
            log.warning("service %r: instances disagree on Meta.%s (%s); using the most common",
                        service, META_PORT_KEY, sorted(votes))  # fmt: skip
        return votes.most_common(1)[0][0] if votes else 0
