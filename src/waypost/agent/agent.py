"""The agent: wiring and lifecycle. It owns no logic of its own beyond deciding which
pieces run (store, state, leader duties, checks, anti-entropy, HTTP, DNS) and in what
order they start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from waypost.agent.checks import AgentChecks
from waypost.agent.leader import LeaderDuties
from waypost.agent.local import LocalState, sync_in_process
from waypost.config import AgentConfig, reload_config
from waypost.state.kv_ops import LockDelays
from waypost.state.model import HealthCheck, Node
from waypost.state.state import State
from waypost.store import open_store
from waypost.store.base import Store

__all__ = ["Agent"]

log = logging.getLogger("waypost.agent")

SERF_CHECK = "serfHealth"


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.started_at = time.time()
        self.store: Store | None = None
        self.state: State | None = None
        self.lock_delays = LockDelays(clock)
        address = config.advertise_addr or config.bind_addr or "127.0.0.1"
        self.node = Node(
            ID=config.node_id,
            Node=config.node_name,
            Address=address,
            Datacenter=config.datacenter,
            TaggedAddresses={"lan": address, "lan_ipv4": address, "wan": address, "wan_ipv4": address},
            Meta={"consul-network-segment": "", **config.node_meta},
        )
        self.local = LocalState(self.node)
        self.leader: LeaderDuties | None = None
        self.checks = AgentChecks(self)
        self.http_port = 0
        self.dns_port = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._servers: list[Any] = []
        self.stopped = asyncio.Event()
        self.events_ltime = 0

    @property
    def datacenter(self) -> str:
        return self.config.datacenter

    @property
    def http_addr(self) -> str:
        cfg = self.config
        return (cfg.addresses.http or cfg.client_addr).split()[0]

    def require_state(self) -> State:
        assert self.state is not None, "agent not started"
        return self.state

    async def start(self) -> None:
        from waypost.api.app import ApiApp
        from waypost.api.http import HttpServer

        self.store = open_store(self.config.store or "memory://")
        self.state = State(self.store)
        await self.state.start()
        self.leader = LeaderDuties(self.state, self.lock_delays, self.clock)
        self.leader.start()
        self.local.add_check(
            HealthCheck(
                Node=self.node.Node,
                CheckID=SERF_CHECK,
                Name="Serf Health Status",
                Status="passing",
                Output="Agent alive and reachable",
            )
        )
        self.checks.load_config()
        await self.checks.start()
        state = self.state
        ae_interval = self.config.ae_interval.seconds

        async def target(*args: Any) -> None:
            await sync_in_process(state, *args)

        self._tasks.append(
            asyncio.create_task(self.local.run(state, target, ae_interval), name="anti-entropy")
        )
        state.listeners.append(self._on_catalog_change)
        http = HttpServer(ApiApp(self).handle)
        self.http_port = await http.listen(self.http_addr, self.config.ports.http)
        self._servers.append(http)
        await asyncio.wait_for(self.local.synced.wait(), 10)
        log.info("agent started: node=%s http=%s dns=%s", self.node.Node, self.http_port, self.dns_port)

    def _on_catalog_change(self, batch: list[Any], revision: int) -> None:
        """Repair the catalog when our node's entries are changed behind our back."""
        name = self.node.Node
        prefixes = (f"catalog/nodes/{name}", f"catalog/services/{name}/", f"catalog/checks/{name}/")
        if any(ev.kv.key.startswith(prefixes) for ev in batch):
            self.local.changed()

    async def reload(self) -> None:
        self.config = reload_config(self.config)
        self.checks.load_config()

    async def stop(self) -> None:
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):
                await server.close()
        self._servers.clear()
        await self.checks.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.leader is not None:
            await self.leader.stop()
        if self.state is not None:
            await self.state.close()
        if self.store is not None:
            await self.store.close()
        self.stopped.set()

    def request_stop(self) -> None:
        """``agent/leave``: answer the request first, then stop."""
        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(self.stop()))
