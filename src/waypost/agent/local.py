"""The agent's own services and checks, and anti-entropy that keeps the catalog equal to them.

The agent is the source of truth for what runs on its node (Consul's model): the catalog
is repaired to match local state whenever either side changes, and on a timer. Check
*output* that changes while the status stays the same is synced at most every
``check_update_interval``, so a script whose output contains a timestamp does not bump
the service's index on every run (Consul issues #2754, #3259).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

from waypost.agent.leader import SERF_CHECK, SERVER_SERVICE
from waypost.state import catalog_ops
from waypost.state.model import HealthCheck, Node, NodeService
from waypost.state.schema import encode
from waypost.state.state import State

__all__ = ["LocalState", "SyncTarget"]

log = logging.getLogger("waypost.agent.local")


T = TypeVar("T", bound=tuple[str, bytes])

SyncTarget = Callable[[Node, list[NodeService], list[HealthCheck], list[str], list[str]], Awaitable[None]]
"""Writes a node's registration: (node, services to put, checks to put, service ids to
delete, check ids to delete). In-process for servers; over HTTP for client agents."""


class LocalState:
    def __init__(
        self,
        node: Node,
        *,
        check_update_interval: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.services: dict[str, NodeService] = {}
        self.checks: dict[str, HealthCheck] = {}
        self.check_update_interval = check_update_interval
        self._clock = clock
        self._output_synced: dict[str, float] = {}
        self._trigger = asyncio.Event()
        self._trigger.set()
        self._change_waiters: list[asyncio.Future[None]] = []
        self.synced = asyncio.Event()

    # -- local changes -----------------------------------------------------------------

    def add_service(self, service: NodeService) -> None:
        encode(service)  # refuses a record anti-entropy could never send, before keeping it
        self.services[service.ID] = service
        for cid, c in self.checks.items():
            if c.ServiceID == service.ID:
                self.checks[cid] = msgspec.structs.replace(
                    c, ServiceName=service.Service, ServiceTags=list(service.Tags)
                )
        self.changed()

    def remove_service(self, service_id: str) -> list[str]:
        """Drop the service and its checks; returns the removed check ids."""
        self.services.pop(service_id, None)
        gone = [cid for cid, c in self.checks.items() if c.ServiceID == service_id]
        for cid in gone:
            del self.checks[cid]
        self.changed()
        return gone

    def add_check(self, check: HealthCheck) -> None:
        encode(check)
        if check.ServiceID and check.ServiceID in self.services:
            svc = self.services[check.ServiceID]
            check = msgspec.structs.replace(check, ServiceName=svc.Service, ServiceTags=list(svc.Tags))
        self.checks[check.CheckID] = msgspec.structs.replace(check, Node=self.node.Node)
        self.changed()

    def remove_check(self, check_id: str) -> None:
        if self.checks.pop(check_id, None) is not None:
            self.changed()

    def update_check(self, check_id: str, status: str, output: str) -> bool:
        check = self.checks.get(check_id)
        if check is None or (check.Status == status and check.Output == output):
            return False
        self.checks[check_id] = msgspec.structs.replace(check, Status=status, Output=output)
        self.changed()
        return True

    def changed(self) -> None:
        self.synced.clear()
        self._trigger.set()
        waiters, self._change_waiters = self._change_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_synced(self, limit: float = 10.0) -> None:
        """Let an API write answer once the catalog shows it (read-your-writes); a catalog
        that cannot be reached only delays the answer, anti-entropy keeps retrying."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.synced.wait(), limit)

    async def wait_for_change(
        self, render: Callable[[], T | None], unchanged: object, limit: float
    ) -> T | None:
        """Hash-based blocking for agent-local endpoints: re-render on every local change
        until the content hash differs from ``unchanged`` or ``limit`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        current = render()
        while current is not None and current[0] == unchanged:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            fut: asyncio.Future[None] = loop.create_future()
            self._change_waiters.append(fut)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, remaining)
            current = render()
        return current

    # -- anti-entropy ------------------------------------------------------------------

    def diff(self, state: State) -> tuple[list[NodeService], list[HealthCheck], list[str], list[str]]:
        """What the catalog lacks or has extra for this node, compared with local state."""
        idx = state.indexes
        name = self.node.Node
        remote_svcs = idx.services.get(name, {})
        remote_checks = idx.checks.get(name, {})
        put_svcs = [
            s for sid, s in self.services.items() if sid not in remote_svcs or not _same(s, remote_svcs[sid])
        ]
        now = self._clock()
        put_checks: list[HealthCheck] = []
        for cid, c in self.checks.items():
            remote = remote_checks.get(cid)
            if remote is not None and _same(c, remote):
                continue
            if (
                remote is not None
                and remote.Status == c.Status
                and _same(msgspec.structs.replace(c, Output=remote.Output), remote)
                and now - self._output_synced.get(cid, -1e18) < self.check_update_interval
            ):
                continue
            put_checks.append(c)
        # The leader owns serfHealth (it follows liveness) and the servers' own service.
        del_svcs = [sid for sid in remote_svcs if sid not in self.services and sid != SERVER_SERVICE]
        del_checks = [cid for cid in remote_checks if cid not in self.checks and cid != SERF_CHECK]
        return put_svcs, put_checks, del_svcs, del_checks

    async def sync_once(self, state: State, target: SyncTarget) -> None:
        put_svcs, put_checks, del_svcs, del_checks = self.diff(state)
        node = state.indexes.nodes.get(self.node.Node)
        if (
            node is not None
            and _same(node, self.node)
            and not (put_svcs or put_checks or del_svcs or del_checks)
        ):
            return
        await target(self.node, put_svcs, put_checks, del_svcs, del_checks)
        for svc in put_svcs:
            log.info("Synced service: service=%s", svc.ID)
        for chk in put_checks:
            log.info("Synced check: check=%s status=%s", chk.CheckID, chk.Status)
        for sid in del_svcs:
            log.info("Deregistered service: service=%s", sid)
        for cid in del_checks:
            log.info("Deregistered check: check=%s", cid)
        now = self._clock()
        for c in put_checks:
            self._output_synced[c.CheckID] = now

    async def run(self, state: State, target: SyncTarget, wait: Callable[[], float]) -> None:
        """Sync on every local change and after every ``wait()`` seconds, backing off on failure."""
        backoff = 0.5
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trigger.wait(), wait())
            self._trigger.clear()
            try:
                await self.sync_once(state, target)
                backoff = 0.5
                if not self._trigger.is_set():
                    self.synced.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("anti-entropy sync failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                self._trigger.set()


def _same(a: msgspec.Struct, b: msgspec.Struct) -> bool:
    return encode(a) == encode(b)


async def sync_in_process(
    state: State,
    node: Node,
    services: list[NodeService],
    checks: list[HealthCheck],
    del_services: list[str],
    del_checks: list[str],
) -> None:
    """The SyncTarget of a server agent: write straight into the catalog."""
    for sid in del_services:
        await catalog_ops.deregister(state, node.Node, service_id=sid)
    for cid in del_checks:
        await catalog_ops.deregister(state, node.Node, check_id=cid)
    await catalog_ops.register(state, node, services, checks)
