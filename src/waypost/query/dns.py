"""Prepared queries for the DNS interface: ``<query>.query.<domain>`` answers.

The DNS core is synchronous and caches each answer until the catalog's revision moves,
while failing over waits on another datacenter. So the first lookup of a query with no
local instance left answers :class:`Pending`: the DNS server awaits ``fail_over`` (one
fetch per name, however many lookups wait on it) and asks again, so even that lookup gets
the other datacenter's instances rather than an NXDOMAIN resolvers would cache. Later
lookups are answered from the landed result; each landing bumps ``generation`` (part of
the DNS backend's revision), which drops the cached answers, and ``refresh`` seconds later
a fresh fetch starts in the background the next time the name is asked for.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from waypost.dns.backend import Instance, NodeRecord, Pending, PreparedResult
from waypost.durations import parse_duration
from waypost.query.definition import QueryError
from waypost.query.executor import Keep, Source, execute, failover_datacenters, run_local
from waypost.query.ops import QueryNotFoundError, Resolver
from waypost.query.remote import RemoteDatacenters
from waypost.state.indexes import Indexes
from waypost.state.model import PreparedQuery, worst_status
from waypost.state.queries import ServiceInstance

__all__ = ["DnsQueries"]

log = logging.getLogger("waypost.query")

_REFRESH = 3.0
"""Seconds between fetches of a failed-over answer while its name is asked for."""


def _local(inst: ServiceInstance) -> Instance:
    return Instance.of(NodeRecord.of(inst.node), inst.service, worst_status([c.Status for c in inst.checks]))


def _remote(row: Any) -> Instance | None:
    """A failed-over answer's row (``/v1/health/service``'s shape) as DNS sees it."""
    if not isinstance(row, dict):
        return None
    n, s = row.get("Node") or {}, row.get("Service") or {}
    weights = s.get("Weights") or {}
    node = NodeRecord(
        str(n.get("Node", "")),
        str(n.get("Address", "")),
        str(n.get("Datacenter", "")),
        n.get("TaggedAddresses") or {},
        n.get("Meta") or {},
    )
    return Instance(
        node=node,
        service=str(s.get("Service", "")),
        address=str(s.get("Address", "")),
        port=int(s.get("Port") or 0),
        tagged_addresses={k: str(v.get("Address", "")) for k, v in (s.get("TaggedAddresses") or {}).items()},
        weight_passing=int(weights.get("Passing", 1)),
        weight_warning=int(weights.get("Warning", 1)),
        status=worst_status([str(c.get("Status", "critical")) for c in row.get("Checks") or ()]),
    )


def _ttl(query: PreparedQuery) -> float | None:
    return parse_duration(query.DNS.TTL) if query.DNS.TTL else None


class DnsQueries:
    def __init__(
        self,
        datacenter: str,
        remote: RemoteDatacenters | None = None,
        *,
        agent_node: str = "",
        token: Callable[[], str | None] = lambda: None,
        rng: random.Random | None = None,
        refresh: float = _REFRESH,
    ) -> None:
        """``agent_node`` is what a query's ``Near = "_agent"`` sorts near; ``token`` gives
        the agent's DNS token, which a failed-over execution carries, as Consul's DNS RPCs do."""
        self._datacenter = datacenter
        self._remote = remote
        self._agent_node = agent_node
        self._token = token
        self._rng = rng
        self._refresh = refresh
        self._resolver = Resolver()
        self._failed_over: dict[str, PreparedResult] = {}
        self._fetches: dict[str, asyncio.Task[None]] = {}
        """Per name, the fetch in flight or landed less than ``refresh`` seconds ago."""
        self.generation = 0
        """Bumped whenever a failed-over answer lands or is due for a refresh."""

    def answer(
        self, idx: Indexes, name: str, keep: Keep | None, client_ip: str = ""
    ) -> PreparedResult | Pending | None:
        """``None`` for a name no query answers (NXDOMAIN); ``client_ip`` is the address
        ``Near = "_ip"`` sorts near, as Consul's DNS passes the client's."""
        try:
            query = self._resolver.resolve(idx, name)
        except (QueryError, QueryNotFoundError):
            return None
        source = Source(ip=client_ip, agent_node=self._agent_node)
        local = run_local(idx, query, self._datacenter, source=source, keep=keep, rng=self._rng)
        key = name.lower()
        remote = self._remote
        if (
            local.instances
            or remote is None
            or not failover_datacenters(query, remote.datacenters_by_distance())
        ):
            self._failed_over.pop(key, None)
            fetch = self._fetches.get(key)
            if fetch is not None and fetch.done():
                del self._fetches[key]  # the next failover fetches afresh at once
            near = query.Service.Near
            instances = [_local(i) for i in local.instances]
            return PreparedResult(query.Service.Service, self._datacenter, instances, _ttl(query), bool(near))
        landed = self._failed_over.get(key)
        if landed is None:
            return Pending(name)
        if key not in self._fetches:
            self._start(idx, query, key, keep, remote)
        return landed

    async def fail_over(self, idx: Indexes, name: str, keep: Keep | None) -> None:
        """Returns once the answer ``answer`` called pending has landed or failed to; a
        caller that stops waiting leaves the fetch running for the next lookup."""
        key = name.lower()
        task = self._fetches.get(key)
        if task is None:
            try:
                query = self._resolver.resolve(idx, name)
            except (QueryError, QueryNotFoundError):
                return
            if self._remote is None:
                return
            task = self._start(idx, query, key, keep, self._remote)
        await asyncio.shield(task)

    def _start(
        self, idx: Indexes, query: PreparedQuery, key: str, keep: Keep | None, remote: RemoteDatacenters
    ) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._fetch(idx, query, key, keep, remote))
        self._fetches[key] = task
        return task

    async def _fetch(
        self, idx: Indexes, query: PreparedQuery, key: str, keep: Keep | None, remote: RemoteDatacenters
    ) -> None:
        source = Source(agent_node=self._agent_node)
        try:
            result = await execute(
                idx, query, remote, source=source, keep=keep, token=self._token(), rng=self._rng
            )
            rows = result.remote_nodes if result.remote_nodes is not None else []
            instances = [i for i in map(_remote, rows) if i is not None]
            self._failed_over[key] = PreparedResult(result.service, result.datacenter, instances, _ttl(query))
        except Exception:
            log.exception("prepared query %s: failing over failed", key)
        finally:
            self.generation += 1
            task = asyncio.current_task()
            asyncio.get_running_loop().call_later(self._refresh, self._due, key, task)

    def _due(self, key: str, task: asyncio.Task[Any] | None) -> None:
        """``refresh`` seconds after a fetch: the next lookup of ``key`` fetches afresh."""
        if self._fetches.get(key) is task:
            del self._fetches[key]
            self.generation += 1
