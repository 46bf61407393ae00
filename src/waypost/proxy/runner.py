"""The proxy as a whole: listeners from the file and from ``Meta.proxy_port``, their pools
fed by the shared ``UpstreamWatcher``, and the status endpoint. With ``vip_listeners``
(``-vip``) every virtual IP gets listeners too, from ``VipWatcher``.

Start-up refuses what cannot work before serving anything: a listener whose port is taken
(``StartError`` naming it) or whose ``filter`` the agent rejects. A service nobody
registered yet is not an error: its listener accepts nothing until instances appear, and
the watcher says so in the log. Listeners asked for by registrations come and go at run
time; one that cannot bind is logged and skipped, never fatal to the others.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from waypost.client import ApiClient, ApiError
from waypost.proxy.config import ListenerConfig, ProxyConfig, meta_listener, split_hostport
from waypost.proxy.outlier import OutlierDetector
from waypost.proxy.pool import Pool
from waypost.proxy.status import StatusServer
from waypost.proxy.tcp import TcpListener
from waypost.proxy.udp import UdpListener
from waypost.proxy.upstreams import MetaWatcher, Selector, UpstreamUpdate, UpstreamWatcher
from waypost.proxy.vip import VipWatcher

__all__ = ["Proxy", "StartError"]

log = logging.getLogger("waypost.proxy")


class StartError(Exception):
    """A listener cannot start; the message names it."""


class Proxy:
    def __init__(
        self, config: ProxyConfig, api: ApiClient, *, wait: str = "5m", rng: random.Random | None = None
    ) -> None:
        self.config = config
        self.api = api
        self.wait = wait
        self.rng = rng
        self.watcher = UpstreamWatcher(api, wait=wait)
        self.watcher.on_update(self._apply)
        self.listeners: dict[ListenerConfig, TcpListener | UdpListener] = {}
        self._pools: defaultdict[Selector, list[Pool]] = defaultdict(list)
        self._meta_task: asyncio.Task[None] | None = None
        self._vip_task: asyncio.Task[None] | None = None
        self.status_server: StatusServer | None = None

    async def start(self) -> None:
        try:
            for listener in self.config.listeners:
                await self._check_filter(listener)
                await self.add(listener)
            if self.config.status_addr:
                host, port = split_hostport(self.config.status_addr, "status_addr")
                self.status_server = StatusServer(host, port, self.status)
                try:
                    await self.status_server.start()
                except OSError as exc:
                    raise StartError(f"status endpoint {self.config.status_addr}: {exc.strerror}") from None
        except BaseException:
            await self.close()
            raise
        if self.config.meta_listeners:
            self._meta_task = asyncio.create_task(self._follow_meta(), name="proxy meta listeners")
        if self.config.vip_listeners:
            self._vip_task = asyncio.create_task(self._follow_vips(), name="proxy virtual IP listeners")

    async def _check_filter(self, listener: ListenerConfig) -> None:
        """An agent that rejects the filter now will reject it forever: say so at start-up."""
        if not listener.filter:
            return
        selector = Selector.of(listener)
        try:
            resp = await self.api.request("GET", selector.path, query=selector.query)
        except ApiError:
            return  # unreachable: the watcher retries and logs
        if 400 <= resp.status < 500:
            reason = resp.body.decode(errors="replace").strip()
            raise StartError(f"{listener.name}: the agent rejected filter {listener.filter!r}: {reason}")

    async def add(self, listener: ListenerConfig) -> TcpListener | UdpListener:
        pool = Pool(listener, OutlierDetector(self.config.outlier), self.rng)
        plane: TcpListener | UdpListener = (
            UdpListener(pool) if listener.protocol == "udp" else TcpListener(pool)
        )
        try:
            await plane.start()
        except OSError as exc:
            raise StartError(
                f"{listener.name}: cannot listen on {listener.bind}: {exc.strerror or exc}"
            ) from None
        selector = Selector.of(listener)
        self._pools[selector].append(pool)
        self.listeners[listener] = plane
        current = self.watcher.current(selector)
        if current is not None:
            pool.update(current)
        self.watcher.watch(selector)
        log.info("%s: listening on port %d (balance %s)", listener.name, plane.port, listener.balance)
        return plane

    async def remove(self, listener: ListenerConfig) -> None:
        plane = self.listeners.pop(listener)
        selector = Selector.of(listener)
        self._pools[selector].remove(plane.pool)
        if not self._pools[selector]:
            del self._pools[selector]
        self.watcher.release(selector)
        await plane.close(drain=listener.drain_timeout)
        log.info("%s: closed", listener.name)

    def _apply(self, update: UpstreamUpdate) -> None:
        for pool in self._pools.get(update.selector, ()):
            pool.update(update)

    async def _follow_meta(self) -> None:
        current: dict[str, ListenerConfig] = {}
        async for ports in MetaWatcher(self.api, wait=self.wait).ports():
            wanted = {service: meta_listener(self.config, service, port) for service, port in ports.items()}
            await self._converge(current, wanted, "asked for by Meta.proxy_port")

    async def _follow_vips(self) -> None:
        current: dict[tuple[str, int], ListenerConfig] = {}
        async for wanted in VipWatcher(self.api, self.watcher, self.config, wait=self.wait).listeners():
            await self._converge(current, wanted, "a virtual IP")

    async def _converge(
        self, current: dict[Any, ListenerConfig], wanted: Mapping[Any, ListenerConfig], origin: str
    ) -> None:
        """Make ``current`` (the run-time listeners of one origin) ``wanted``: changed and
        departed ones close, new ones open; one that cannot bind is logged and retried at
        the next answer, never fatal to the others."""
        for key, listener in list(current.items()):
            if wanted.get(key) != listener:
                del current[key]
                await self.remove(listener)
        for key, listener in wanted.items():
            if key in current:
                continue
            try:
                await self.add(listener)
            except StartError as exc:
                log.error("%s (%s)", exc, origin)
                continue
            current[key] = listener

    def status(self) -> dict[str, Any]:
        listeners = []
        for listener, plane in self.listeners.items():
            pool = plane.pool
            listeners.append(
                {
                    "Service": listener.service,
                    "Protocol": listener.protocol,
                    "Bind": f"{listener.host}:{plane.port}",
                    "Balance": listener.balance,
                    "FromMeta": listener.from_meta,
                    "Index": pool.index,
                    "Open": pool.open_connections(),
                    "Upstreams": [
                        {
                            "Node": up.node,
                            "ServiceID": up.service_id,
                            "Address": up.target,
                            "Weight": up.weight,
                            "Active": pool.active.get(up.key, 0),
                            "Ejected": pool.outlier.ejected(up.key),
                        }
                        for up in pool.upstreams
                    ],
                }
            )
        return {"Listeners": listeners}

    async def close(self) -> None:
        for task in (self._meta_task, self._vip_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for plane in list(self.listeners.values()):
            await plane.close()
        self.listeners.clear()
        self._pools.clear()
        await self.watcher.close()
        if self.status_server is not None:
            await self.status_server.close()
