"""``waypost proxy -vip``: a listener on each virtual IP for every port of the instances behind it.

The addresses come from one blocking query on ``/v1/waypost/virtual-ips``, and the instances
behind each name from ``/v1/waypost/virtual-ip-instances`` through the shared
``UpstreamWatcher``, so a declared virtual service's filter is the agent's to evaluate. As
Consul's transparent proxy routes a virtual IP whatever port was dialled, every listener of
a name balances over all of its instances; a port is listened on while some instance uses
it. The default range is on loopback, so binding its addresses needs no privileges on Linux.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from waypost.client import ApiClient, ApiError
from waypost.proxy.config import ListenerConfig, ProxyConfig, vip_listener
from waypost.proxy.upstreams import Selector, UpstreamUpdate, UpstreamWatcher

__all__ = ["ALLOCATIONS_PATH", "VipWatcher"]

log = logging.getLogger("waypost.proxy")

ALLOCATIONS_PATH = "/v1/waypost/virtual-ips"
_RETRY = 30.0
"""Seconds between asks of an agent that refuses the allocations (older, or an ACL denial)."""


class VipWatcher:
    """Yields the listeners the virtual IPs want, keyed by (name, port), after each change."""

    def __init__(self, api: ApiClient, upstreams: UpstreamWatcher, config: ProxyConfig, *, wait: str) -> None:
        self.api = api
        self.upstreams = upstreams
        self.config = config
        self.wait = wait
        self._addresses: dict[str, str] = {}
        self._ports: dict[str, frozenset[int]] = {}
        self._changed = asyncio.Event()

    async def listeners(self) -> AsyncIterator[dict[tuple[str, int], ListenerConfig]]:
        self.upstreams.on_update(self._on_upstreams)
        follow = asyncio.create_task(self._follow_addresses(), name="proxy virtual IPs")
        try:
            while True:
                await self._changed.wait()
                self._changed.clear()
                yield {
                    (name, port): vip_listener(self.config, name, address, port)
                    for name, address in self._addresses.items()
                    for port in sorted(self._ports.get(name, ()))
                }
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
            for name in self._addresses:
                self.upstreams.release(Selector(name, virtual=True))

    def _on_upstreams(self, update: UpstreamUpdate) -> None:
        name = update.service
        if not update.selector.virtual or name not in self._addresses:
            return
        ports = frozenset(u.port for u in update.upstreams)
        if self._ports.get(name) != ports:
            self._ports[name] = ports
            self._changed.set()

    async def _follow_addresses(self) -> None:
        while True:
            try:
                async for resp in self.api.watch(ALLOCATIONS_PATH, wait=self.wait):
                    rows = resp.json() or []
                    self._update({str(r["Name"]): str(r["IP"]) for r in rows if isinstance(r, dict)})
            except ApiError as exc:
                log.error(
                    "the agent refused the virtual IP query: %s; retrying in %.0fs", exc.message, _RETRY
                )
                await asyncio.sleep(_RETRY)

    def _update(self, addresses: dict[str, str]) -> None:
        for name in self._addresses.keys() - addresses.keys():
            self.upstreams.release(Selector(name, virtual=True))
            self._ports.pop(name, None)
        known = self._addresses
        self._addresses = addresses
        for name in addresses.keys() - known.keys():
            selector = Selector(name, virtual=True)
            self.upstreams.watch(selector)
            current = self.upstreams.current(selector)
            if current is not None:
                self._on_upstreams(current)
        self._changed.set()
