"""Duties exactly one server runs while it leads: session invalidation, freeing the locks
of expired sessions, node health from liveness (the ``serfHealth`` check), and reaping
KV tombstones.

TTL sessions and node liveness are store leases, so their expiry is the store's job and
shows up here as a change, the same on every server. Whoever leads when the change
arrives reconciles the catalog; a new leader reconciles everything once on taking over.
Tombstones and expired ACL tokens are the duties on timers of their own: like Consul's
leader, ours decides when deletes are old enough and writes one reap index that every
agent applies, and deletes tokens past their ExpirationTime (every agent already refuses
them from that instant; the delete only tidies the table). Virtual
IPs are allocated by the leader too, as new service names appear, so that allocations
are not raced by every agent at once (they would still be safe: see ``vip_ops``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from waypost.acl.resolve import expiry_of
from waypost.agent.tasks import cancel_all
from waypost.config.model import TombstoneGC, VirtualIPs
from waypost.state import acl_ops, catalog_ops, schema, vip_ops
from waypost.state.kv_ops import LockDelays
from waypost.state.model import Graveyard, HealthCheck, NodeService
from waypost.state.session_ops import destroy_session, release_orphaned_locks, sessions_to_invalidate
from waypost.state.state import State, TxnPlan
from waypost.store.base import Event, EventType, Put

__all__ = ["SERF_CHECK", "SERVER_SERVICE", "LeaderDuties", "TombstoneTimer"]

log = logging.getLogger("waypost.leader")

SERF_CHECK = "serfHealth"
SERVER_SERVICE = "consul"
"""Every server is an instance of the ``consul`` service, which DNS's NS and SOA list."""
_ALIVE = "Agent alive and reachable"
_DEAD = "Agent not live or unreachable"
_WATCHED = ("sessions/", "catalog/nodes/", "catalog/checks/", "system/members/", "system/liveness/",
            "system/leader/")  # fmt: skip
"""What can change a reconcile's outcome. KV writes cannot orphan a lock (acquiring checks
the session exists in the same transaction), so they do not wake it."""
_TOKEN_REAP_INTERVAL = 1.0
"""Seconds between token reaps woken by token writes at least (Consul's reaping rate)."""
_VIP_WATCHED = (schema.SERVICES.prefix, schema.VIRTUAL_IPS.prefix, schema.VIRTUAL_IP_CLAIMS.prefix)
"""New service names want an address; a record deleted by hand is given one again."""


class TombstoneTimer:
    """When deletes become reapable, without timers of its own (Consul's ``TombstoneGC``).

    A delete at ``index`` may be reaped ``ttl`` after it was seen. Expiries are rounded up
    to ``granularity`` and each bin keeps only its highest index, so a burst of deletes
    costs one reap, and reaping up to an index reaps every older tombstone too."""

    def __init__(self, config: TombstoneGC, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = config.ttl.seconds
        self.granularity = config.granularity.seconds
        self.clock = clock
        self._bins: dict[float, int] = {}

    def hint(self, index: int) -> None:
        expires = math.ceil((self.clock() + self.ttl) / self.granularity) * self.granularity
        self._bins[expires] = max(self._bins.get(expires, 0), index)

    def next_expiry(self) -> float | None:
        return min(self._bins, default=None)

    def expired(self) -> int:
        """The highest index now past its TTL (0 if none); its bins are forgotten."""
        now = self.clock()
        due = [at for at in self._bins if at <= now]
        return max((self._bins.pop(at) for at in due), default=0)


class LeaderDuties:
    def __init__(
        self,
        state: State,
        lock_delays: LockDelays,
        tombstone_gc: TombstoneGC,
        virtual_ips: VirtualIPs | None = None,
    ) -> None:
        self.state = state
        self.lock_delays = lock_delays
        self.tombstones = TombstoneTimer(tombstone_gc)
        self.virtual_ips = virtual_ips or VirtualIPs()
        self._wake = asyncio.Event()
        self._vips_wanted = asyncio.Event()
        self._deleted = asyncio.Event()
        self._tokens_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.state.listeners.append(self._on_change)
        if self.state.indexes.kv_tombstones:
            # Deletes seen under a previous leader: reap them a TTL from now, as Consul does.
            self.tombstones.hint(self.state.indexes.revision)
        self._tasks = [
            asyncio.create_task(self._run(), name="leader-duties"),
            asyncio.create_task(self._reap_tombstones(), name="tombstone-gc"),
            asyncio.create_task(self._allocate_virtual_ips(), name="virtual-ips"),
            asyncio.create_task(self._reap_expired_tokens(), name="acl-token-reaper"),
        ]
        self._wake.set()
        self._vips_wanted.set()

    async def stop(self) -> None:
        if self._on_change in self.state.listeners:
            self.state.listeners.remove(self._on_change)
        await cancel_all(self._tasks)

    def _on_change(self, batch: list[Event], revision: int) -> None:
        if any(ev.kv.key.startswith(_WATCHED) for ev in batch):
            self._wake.set()
        if any(ev.kv.key.startswith(_VIP_WATCHED) for ev in batch):
            self._vips_wanted.set()
        if any(ev.kv.key.startswith(schema.ACL_TOKENS.prefix) for ev in batch):
            self._tokens_changed.set()
        if any(ev.type is EventType.DELETE and ev.kv.key.startswith(schema.KVS.prefix) for ev in batch):
            idle = self.tombstones.next_expiry() is None
            self.tombstones.hint(revision)
            if idle:
                # Later deletes expire after the earliest pending bin, which the reaper already awaits.
                self._deleted.set()

    async def _reap_tombstones(self) -> None:
        timer = self.tombstones
        pending = 0
        while True:
            self._deleted.clear()
            pending = max(pending, timer.expired())
            if pending:
                try:
                    await self._write_reap(pending)
                    pending = 0
                except Exception:
                    log.exception("tombstone reap up to index %d failed; retrying", pending)
            expiry = timer.next_expiry()
            if pending:
                delay: float | None = timer.granularity
            else:
                delay = None if expiry is None else max(0.0, expiry - timer.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deleted.wait(), delay)

    async def _write_reap(self, index: int) -> None:
        state = self.state

        def plan() -> TxnPlan | None:
            current = state.indexes.graveyard
            if current is not None and current.ReapIndex >= index:
                return None
            record = schema.encode(Graveyard(ReapIndex=index))
            return [catalog_ops.guard(schema.GRAVEYARD_KEY, current)], [Put(schema.GRAVEYARD_KEY, record)]

        await state.write(plan)

    async def _reap_expired_tokens(self) -> None:
        """Delete tokens past their ExpirationTime, then sleep until the next one expires
        or a token is written; a failed delete is retried a reap interval later."""
        while True:
            self._tokens_changed.clear()
            now = time.time()
            upcoming: list[float] = []
            for token in list(self.state.indexes.acl_tokens.values()):
                expiry = expiry_of(token)
                if expiry is None:
                    continue
                if expiry > now:
                    upcoming.append(expiry)
                    continue
                try:
                    await acl_ops.delete_record(self.state, schema.ACL_TOKENS, token.AccessorID)
                    log.info("reaped an expired ACL token: accessor=%s", token.AccessorID)
                except Exception:
                    log.exception("reaping expired ACL token %s failed; retrying", token.AccessorID)
                    upcoming.append(now + _TOKEN_REAP_INTERVAL)
            delay = None if not upcoming else max(0.0, min(upcoming) - time.time())
            try:
                await asyncio.wait_for(self._tokens_changed.wait(), delay)
            except TimeoutError:
                continue
            await asyncio.sleep(_TOKEN_REAP_INTERVAL)

    def wanted_virtual_ips(self) -> dict[str, str]:
        """Every name that should hold an address, with its filter (empty for a catalog
        service); a declared virtual service wins over a catalog service of its name."""
        wanted = dict.fromkeys(self.state.indexes.instances, "") if self.virtual_ips.catalog_services else {}
        wanted.update(self.virtual_ips.services)
        return wanted

    async def _allocate_virtual_ips(self) -> None:
        """A full range is logged once per set of names left out, not on every change,
        and never stops the other duties."""
        network = vip_ops.parse_range(self.virtual_ips.range)
        reported: list[str] = []
        while True:
            self._vips_wanted.clear()
            try:
                await vip_ops.allocate(self.state, network, self.wanted_virtual_ips())
                reported = []
            except vip_ops.VipRangeFullError as exc:
                if exc.names != reported:
                    log.error("%s", exc)
                    reported = exc.names
            except Exception:
                log.exception("virtual IP allocation failed; retrying")
                await asyncio.sleep(0.5)
                self._vips_wanted.set()
            await self._vips_wanted.wait()

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
