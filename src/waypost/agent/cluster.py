"""Membership, liveness and leader election, all through the store's leases.

Consul uses Serf gossip and Raft for these; waypost uses the store it already has (an
etcd cluster when clustered), the way Kubernetes components do:

- every agent writes a ``Member`` record and keeps a ``Liveness`` key alive on a lease
  whose TTL is its own failure deadline (``pacing.liveness_pace``: ``failure_timeout``,
  longer when its heartbeat interval is); a dead or partitioned agent's lease lapses,
  its key vanishes, and the leader turns its ``serfHealth`` critical. The leader needs
  no interval of its own, so nodes heartbeating at different rates mix safely;
- every server campaigns for one leader key on a short lease; whoever holds it runs the
  leader duties, and a crashed leader's key lapses within ``LEADER_TTL``;
- a server's member record carries its agent-to-server address (``Addr`` and the ``port``
  tag, as Consul's server tags do), from which client agents learn every server to fail
  over to after joining just one;
- ``force-leave`` marks a member left. A running agent refutes it by writing its record
  back, as a Serf member refutes a leave intent about itself, and shows Serf's ``leaving``
  until then; a dead one stays left and the leader reaps its node from the catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import msgspec

from waypost.agent.leader import LeaderDuties
from waypost.agent.pacing import MISSED_HEARTBEATS, Pace, liveness_pace
from waypost.agent.tasks import cancel_all
from waypost.state import catalog_ops, schema
from waypost.state.model import Leader, Liveness, Member
from waypost.state.state import State
from waypost.store.base import Compare, Event, LeaseNotFoundError, Put, StoreError
from waypost.store.remote import RemoteStore

if TYPE_CHECKING:
    from waypost.agent.agent import Agent

__all__ = ["LEADER_TTL", "Cluster"]

log = logging.getLogger("waypost.cluster")

LEADER_TTL = 5.0
"""Seconds a crashed leader keeps the title; short, because failover waits for it."""


class Cluster:
    def __init__(self, agent: Agent, state: State) -> None:
        self.agent = agent
        self.state = state
        self.duties: LeaderDuties | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._liveness_lease = 0
        self._lease_ttl = 0.0
        self._leader_lease = 0
        self._leaving = False
        self._membership: asyncio.Task[None] | None = None
        self._membership_changed = False
        self._reached: float | None = None
        """When a heartbeat last reached the store (monotonic); None after one failed."""

    @property
    def reaching_store(self) -> bool:
        """Whether the store (on a client agent, a server) answered the last heartbeat, and
        within this node's failure deadline: a heartbeat hanging on a frozen server counts as lost."""
        return self._reached is not None and time.monotonic() - self._reached <= self._lease_ttl

    def size(self) -> int:
        """Members that count towards the scale factor: left ones send nothing."""
        return sum(not m.Left for m in self.state.indexes.members.values())

    def pace(self) -> Pace:
        """Heartbeat interval and deadline for the cluster's current size."""
        return liveness_pace(self.agent.config.liveness, self.size())

    @property
    def is_leader(self) -> bool:
        leader = self.state.indexes.leader
        return self.duties is not None and leader is not None and leader.Name == self.agent.node.Node

    def member(self) -> Member:
        agent = self.agent
        cfg = agent.config
        tags = {"dc": agent.datacenter, "role": "consul" if cfg.server else "node", "id": agent.node.ID}
        if cfg.server:
            tags["port"] = str(agent.server_port or cfg.ports.server)
        return Member(
            Name=agent.node.Node,
            Addr=agent.node.Address,
            Port=cfg.ports.serf_lan,
            Tags=tags,
            Server=cfg.server,
            HTTPAddr=f"{agent.node.Address}:{agent.http_port}",
            HTTPSAddr=f"{agent.node.Address}:{agent.https_port}" if agent.https_port else "",
        )

    async def start(self) -> None:
        store = self.state.store
        await store.put(schema.MEMBERS.key(self.agent.node.Node), schema.encode(self.member()))
        await self._renew_liveness()
        self._reached = time.monotonic()
        self.state.listeners.append(self._on_change)
        self._learn_servers()
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="liveness"))
        if self.agent.config.server:
            self._tasks.append(asyncio.create_task(self._campaign(), name="election"))

    async def stop(self) -> None:
        if self._on_change in self.state.listeners:
            self.state.listeners.remove(self._on_change)
        await cancel_all([*self._tasks, *([self._membership] if self._membership else [])])
        self._tasks.clear()
        await self._step_down()
        if self._leader_lease:
            with contextlib.suppress(StoreError, OSError):
                await self.state.store.lease_revoke(self._leader_lease)

    async def leave(self) -> None:
        """Graceful leave: marked left, deregistered, lease dropped; not reported as failed."""
        self._leaving = True
        name = self.agent.node.Node
        left = self.member()
        left.Left = True
        store = self.state.store
        await store.put(schema.MEMBERS.key(name), schema.encode(left))
        await catalog_ops.deregister(self.state, name)
        if self._liveness_lease:
            with contextlib.suppress(StoreError):
                await store.lease_revoke(self._liveness_lease)

    async def force_leave(self, name: str, *, prune: bool = False) -> bool:
        """``force-leave``: the member is marked left, or with ``prune`` forgotten at once. A
        failed member's node is deregistered now; a running one refutes and stays alive."""
        idx = self.state.indexes
        member = idx.members.get(name)
        if member is None:
            return False
        store = self.state.store
        if prune:
            _, revision = await store.delete(schema.MEMBERS.key(name))
            await self.state.wait_applied(revision)
        elif not member.Left:
            left = msgspec.structs.replace(member, Left=True)
            await self.state.wait_applied(await store.put(schema.MEMBERS.key(name), schema.encode(left)))
        if name not in idx.live:
            await catalog_ops.deregister(self.state, name)
        return True

    def _on_change(self, batch: list[Event], revision: int) -> None:
        if any(ev.kv.key.startswith(("system/members/", "system/liveness/")) for ev in batch):
            self._learn_servers()
            self._membership_changed = True
            if self._membership is None or self._membership.done():
                self._membership = asyncio.create_task(self._keep_membership(), name="membership")

    def _learn_servers(self) -> None:
        """A client agent fails over across every server it has heard of, not only those it joined."""
        store = self.state.store
        if not isinstance(store, RemoteStore):
            return
        for member in self.state.indexes.members.values():
            port = member.Tags.get("port", "")
            if member.Server and not member.Left and port:
                host = f"[{member.Addr}]" if ":" in member.Addr else member.Addr
                with contextlib.suppress(ValueError):
                    store.add_server(f"{host}:{port}")

    async def _keep_membership(self) -> None:
        """Refute a force-leave of this running agent; as leader, reap the nodes of members
        that left and are no longer alive (a force-left agent that died before refuting)."""
        name = self.agent.node.Node
        while self._membership_changed:
            self._membership_changed = False
            idx = self.state.indexes
            own = idx.members.get(name)
            try:
                if not self._leaving and (own is None or own.Left):
                    log.warning("refuting a force-leave of this agent: it is still running")
                    await self.state.store.put(schema.MEMBERS.key(name), schema.encode(self.member()))
                if self.is_leader:
                    for member in [m for m in idx.members.values() if m.Left]:
                        if member.Name not in idx.live and member.Name in idx.nodes:
                            log.info("reaping the node of a member that left: node=%s", member.Name)
                            await catalog_ops.deregister(self.state, member.Name)
            except (StoreError, OSError) as exc:
                log.warning("membership upkeep failed: %s", exc)

    async def _renew_liveness(self) -> None:
        """Keep the lease alive; when the deadline changed with the cluster's size, move the
        key onto a lease of the new TTL first, so that it never lapses in between."""
        store = self.state.store
        ttl = self.pace().deadline
        if self._liveness_lease and ttl == self._lease_ttl:
            try:
                await store.lease_keepalive(self._liveness_lease)
                return
            except LeaseNotFoundError:
                log.warning("liveness lease lapsed; re-establishing")
        previous, previous_ttl = self._liveness_lease, self._lease_ttl
        lease = await store.lease_grant(ttl)
        key = schema.LIVENESS.key(self.agent.node.Node)
        await store.put(key, schema.encode(Liveness(Node=self.agent.node.Node)), lease)
        self._liveness_lease, self._lease_ttl = lease, ttl
        if previous and ttl != previous_ttl:
            log.info("liveness deadline %.1fs -> %.1fs as the cluster changed size", previous_ttl, ttl)
            with contextlib.suppress(StoreError, OSError):
                await store.lease_revoke(previous)

    async def _heartbeat(self) -> None:
        """When the interval grows, the first longer sleep is cut to what the lease still
        held allows, and the renewal after it moves the key onto the longer lease."""
        while True:
            await asyncio.sleep(min(self.pace().interval, self._lease_ttl / MISSED_HEARTBEATS))
            try:
                await self._renew_liveness()
                self._reached = time.monotonic()
            except (StoreError, OSError) as exc:
                self._reached = None
                log.warning("heartbeat failed: %s", exc)

    async def _campaign(self) -> None:
        store = self.state.store
        me = Leader(Name=self.agent.node.Node, Addr=f"{self.agent.node.Address}:{self.agent.server_port}")
        while True:
            try:
                if self.state.indexes.leader is not None:
                    await asyncio.sleep(0.25)
                    continue
                lease = await store.lease_grant(LEADER_TTL)
                won = await store.txn(
                    [Compare(schema.LEADER_KEY, "version", "=", 0)],
                    [Put(schema.LEADER_KEY, schema.encode(me), lease)],
                )
                if not won.succeeded:
                    await store.lease_revoke(lease)
                    continue
                await self.state.wait_applied(won.revision)
                log.info("this server is now the leader")
                await self._lead(lease)
            except asyncio.CancelledError:
                raise
            except (StoreError, OSError) as exc:
                log.warning("election: %s", exc)
                await self._step_down()
                await asyncio.sleep(1.0)

    async def _lead(self, lease: int) -> None:
        self._leader_lease = lease
        config = self.agent.config
        self.duties = LeaderDuties(
            self.state, self.agent.lock_delays, config.tombstone_gc, config.virtual_ips
        )
        self.duties.start()
        try:
            while True:
                await asyncio.sleep(LEADER_TTL / 3)
                await self.state.store.lease_keepalive(lease)
        except LeaseNotFoundError:
            log.warning("leadership lost")
        finally:
            await self._step_down()

    async def _step_down(self) -> None:
        if self.duties is not None:
            await self.duties.stop()
            self.duties = None
