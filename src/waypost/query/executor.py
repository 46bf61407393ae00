"""Executing a prepared query: Consul's ``PreparedQuery.Execute`` over the in-memory catalog.

The local part is synchronous and pure (filters, shuffle, RTT sort, limit), so HTTP, DNS
and a remote datacenter's forwarded execution share it; only failover awaits, through
the ``RemoteDatacenters`` seam. Randomness comes in as an ``rng`` so tests can pin it.

Order of work, as Consul's: the service's instances, the health filter (critical always
out, warning out with ``OnlyPassing``, ``IgnoreCheckIDs`` skipped), node and service meta,
tags (``!tag`` excludes), the ACL filter, a shuffle, a stable sort by estimated RTT from
the ``near`` node (the node itself first), then ``limit``. With nothing left, the query
fails over: the ``NearestN`` nearest datacenters, then ``Datacenters`` in order (unknown
ones skipped, none tried twice), stopping at the first that answers with instances.
``Failovers`` counts the datacenters tried.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from waypost.coordinates import CoordinateError, distance
from waypost.query.remote import RemoteDatacenters
from waypost.state.indexes import Indexes
from waypost.state.model import PreparedQuery, QueryDNS
from waypost.state.queries import ServiceInstance, service_instances

__all__ = ["Execution", "Source", "execute", "failover_datacenters", "run_local"]

Keep = Callable[[str, str], bool]
"""ACL filter: whether an instance (node name, service name) may be shown. For a Connect
execution the name is the proxy's own, not its destination's: Consul's ``CanRead`` asks no
more of a query's answer, where /v1/health/connect also wants the destination readable."""

_NEAR_SEARCH = 10
"""How deep Consul looks for the ``near`` node to move it first."""


@dataclass(frozen=True)
class Source:
    """Where the caller is, for ``near`` sorting: ``?near`` (else the query's ``Near``), with
    ``_agent`` meaning ``agent_node`` and ``_ip`` the node whose address is ``ip``."""

    near: str = ""
    ip: str = ""
    agent_node: str = ""


@dataclass
class Execution:
    """An answer: local ``instances``, or a remote datacenter's ``remote_nodes`` (JSON rows)."""

    service: str
    datacenter: str
    dns: QueryDNS
    instances: list[ServiceInstance] = field(default_factory=list)
    remote_nodes: list[Any] | None = None
    failovers: int = 0
    filtered: bool = False
    """Whether the ACL filter removed any instance (X-Consul-Results-Filtered-By-ACLs)."""

    @property
    def empty(self) -> bool:
        return not (self.remote_nodes if self.remote_nodes is not None else self.instances)


def _healthy(inst: ServiceInstance, only_passing: bool, ignore: frozenset[str]) -> bool:
    for check in inst.checks:
        if check.CheckID in ignore or check.Status == "passing":
            continue
        if only_passing or check.Status != "warning":
            return False
    return True


def _has_meta(meta: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    return not wanted or all(k in meta and meta[k] == v for k, v in wanted.items())


def _tags_ok(tags: list[str], wanted: list[str] | None) -> bool:
    if not wanted:
        return True
    have = {t.lower() for t in tags}
    for tag in wanted:
        tag = tag.lower()
        if tag.startswith("!"):
            if tag[1:] in have:
                return False
        elif tag not in have:
            return False
    return True


def select(idx: Indexes, query: PreparedQuery, keep: Keep | None) -> tuple[list[ServiceInstance], bool]:
    """The instances the query selects, unordered, and whether ACLs hid any."""
    svc = query.Service
    ignore = frozenset(svc.IgnoreCheckIDs or ())
    found = [
        inst
        for inst in service_instances(idx, svc.Service, connect=svc.Connect)[2]
        if _healthy(inst, svc.OnlyPassing, ignore)
        and _has_meta(inst.node.Meta, svc.NodeMeta)
        and _has_meta(inst.service.Meta, svc.ServiceMeta)
        and _tags_ok(inst.service.Tags, svc.Tags)
    ]
    if keep is None:
        return found, False
    kept = [inst for inst in found if keep(inst.node.Node, inst.service.Service)]
    return kept, len(kept) != len(found)


def _source_node(idx: Indexes, query: PreparedQuery, source: Source) -> str:
    near = source.near or query.Service.Near
    if near == "_agent":
        return source.agent_node
    if near == "_ip":
        return next((n.Node for n in idx.nodes.values() if source.ip and n.Address == source.ip), "")
    return near


def _coordinates(idx: Indexes) -> dict[str, dict[str, Any]]:
    return {c.Node: c.Coord for c in idx.coordinates.values() if not c.Segment}


def _rtt(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float:
    if a is None or b is None:
        return math.inf
    try:
        return distance(a, b)
    except CoordinateError:
        return math.inf


def sort_near(idx: Indexes, instances: list[ServiceInstance], node: str) -> None:
    """Consul's ``sortNodesByDistanceFrom`` then the near node moved first; nothing moves
    when the node has no coordinate."""
    if not node:
        return
    coords = _coordinates(idx)
    origin = coords.get(node)
    if origin is not None:
        instances.sort(key=lambda inst: _rtt(origin, coords.get(inst.node.Node)))
    for i, inst in enumerate(instances[:_NEAR_SEARCH]):
        if inst.node.Node == node:
            instances[0], instances[i] = instances[i], instances[0]
            break


def run_local(
    idx: Indexes,
    query: PreparedQuery,
    datacenter: str,
    *,
    limit: int = 0,
    source: Source | None = None,
    keep: Keep | None = None,
    rng: random.Random | None = None,
) -> Execution:
    """The query in this datacenter only; ``source`` None skips the RTT sort (a forwarded
    execution, which Consul only shuffles)."""
    instances, filtered = select(idx, query, keep)
    (rng or random).shuffle(instances)
    if source is not None:
        sort_near(idx, instances, _source_node(idx, query, source))
    if limit > 0:
        del instances[limit:]
    return Execution(query.Service.Service, datacenter, query.DNS, instances, filtered=filtered)


def failover_datacenters(query: PreparedQuery, nearest: list[str]) -> list[str]:
    """The datacenters to try, in order: the ``NearestN`` nearest, then the listed ones
    that are known (Consul skips unknown names rather than fail)."""
    failover = query.Service.Failover
    listed = failover.Datacenters or [t.Datacenter for t in failover.Targets or () if t.Datacenter]
    chosen = nearest[: failover.NearestN] if failover.NearestN > 0 else []
    known = set(nearest)
    for dc in listed:
        if dc in known and dc not in chosen:
            chosen.append(dc)
    return chosen


class _RemoteAnswer(msgspec.Struct):
    Service: str = ""
    Nodes: list[Any] | None = None
    DNS: QueryDNS = msgspec.field(default_factory=QueryDNS)
    Datacenter: str = ""


_DECODE = msgspec.json.Decoder(_RemoteAnswer)


async def execute(
    idx: Indexes,
    query: PreparedQuery,
    remote: RemoteDatacenters,
    *,
    limit: int = 0,
    connect: bool = False,
    source: Source | None = None,
    keep: Keep | None = None,
    token: str | None = None,
    rng: random.Random | None = None,
) -> Execution:
    """Local first; when nothing is left, each failover datacenter in turn. ``idx`` is read
    before the first await only."""
    if connect:
        query = msgspec.structs.replace(query, Service=msgspec.structs.replace(query.Service, Connect=True))
    answer = run_local(
        idx, query, remote.local_datacenter(), limit=limit, source=source or Source(), keep=keep, rng=rng
    )
    if not answer.empty:
        return answer
    targets = failover_datacenters(query, remote.datacenters_by_distance())
    if not targets:
        return answer
    definition = msgspec.to_builtins(query)
    params = {k: v for k, v in (("limit", str(limit) if limit else ""), ("connect", "true" * connect)) if v}
    for tried, dc in enumerate(targets, 1):
        answer.failovers = tried
        body = await remote.execute_remote(dc, definition, params, token)
        if body is None:
            continue
        try:
            got = _DECODE.decode(body)
        except msgspec.DecodeError:
            continue
        answer.service, answer.dns, answer.datacenter = got.Service, got.DNS, got.Datacenter or dc
        answer.instances, answer.remote_nodes = [], got.Nodes or []
        if got.Nodes:
            break
    return answer
