"""Duties exactly one server runs while it leads: session invalidation, freeing the locks
of expired sessions, and node health from liveness (the ``serfHealth`` check).

Nothing here keeps timers: TTL sessions and node liveness are store leases, so expiry
is the store's job and shows up here as a change, the same on every server. Whoever
leads when the change arrives reconciles the catalog; a new leader reconciles everything
once on taking over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from waypost.state import catalog_ops
from waypost.state.kv_ops import LockDelays
from waypost.state.model import HealthCheck, NodeService
from waypost.state.session_ops import destroy_session, release_orphaned_locks, sessions_to_invalidate
from waypost.state.state import State
from waypost.store.base import Event

__all__ = ["SERF_CHECK", "SERVER_SERVICE", "LeaderDuties"]

log = logging.getLogger("waypost.leader")

SERF_CHECK = "serfHealth"
SERVER_SERVICE = "consul"
"""Every server is an instance of the ``consul`` service, which DNS's NS and SOA list."""
_ALIVE = "Agent alive and reachable"
_DEAD = "Agent not live or unreachable"
_WATCHED = ("sessions/", "catalog/nodes/", "catalog/checks/", "system/")
"""What can change a duty's outcome. KV writes cannot orphan a lock (acquiring checks the
session exists in the same transaction), so they do not wake the leader."""


class LeaderDuties:
    def __init__(self, state: State, lock_delays: LockDelays) -> None:
        self.state = state
        self.lock_delays = lock_delays
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.state.listeners.append(self._on_change)
        self._task = asyncio.create_task(self._run(), name="leader-duties")
        self._wake.set()

    async def stop(self) -> None:
        if self._on_change in self.state.listeners:
            self.state.listeners.remove(self._on_change)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_change(self, batch: list[Event], revision: int) -> None:
        if any(ev.kv.key.startswith(_WATCHED) for ev in batch):
            self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leader reconcile failed; retrying")
                await asyncio.sleep(0.5)
                self._wake.set()
            await self._wake.wait()

    async def reconcile(self) -> None:
        await self._node_health()
        for sid in sessions_to_invalidate(self.state):
            await destroy_session(self.state, sid, self.lock_delays)
        await release_orphaned_locks(self.state, self.lock_delays)

    async def _node_health(self) -> None:
        """serfHealth of every member's node follows whether its liveness lease is alive."""
        idx = self.state.indexes
        for name, member in sorted(idx.members.items()):
            node = idx.nodes.get(name)
            if member.Left or node is None:
                continue
            alive = name in idx.live
            status, output = ("passing", _ALIVE) if alive else ("critical", _DEAD)
            current = idx.checks.get(name, {}).get(SERF_CHECK)
            if current is not None and (current.Status, current.Output) == (status, output):
                continue
            check = HealthCheck(
                Node=name, CheckID=SERF_CHECK, Name="Serf Health Status", Status=status, Output=output
            )
            await catalog_ops.register(self.state, node, [], [check], skip_node_update=True)
        for name, member in sorted(idx.members.items()):
            node = idx.nodes.get(name)
            if (
                not member.Server
                or member.Left
                or node is None
                or SERVER_SERVICE in idx.services.get(name, {})
            ):
                continue
            port = int(member.Tags.get("port", "8300"))
            service = NodeService(
                ID=SERVER_SERVICE, Service=SERVER_SERVICE, Port=port, Datacenter=node.Datacenter
            )
            await catalog_ops.register(self.state, node, [service], skip_node_update=True)
