"""DNS on a client agent, which does not hold the catalog: service and node names are read
from a server (``health/service``, ``health/connect``, ``catalog/node``, with the DNS
token, ``?stale`` as Consul's ``dns_config.allow_stale``) and kept in a small cache.

A name not cached is answered :class:`~waypost.dns.backend.Pending`: the DNS server waits
(at most ``recursor_timeout``) for ``fail_over`` to read it, then asks again, so a first
lookup costs one round trip to a server and never a false NXDOMAIN. An entry is fresh for
``dns_config.cache_max_age`` with ``use_cache``, else for ``FRESH`` seconds (Consul asks a
server on every lookup then; a second bounds the staleness and the load alike). When no
server answers, a stale entry is served rather than none. The cache holds at most
``MAX_ENTRIES`` names; the oldest go first.

Virtual IPs and prepared queries are read the same way (``/v1/waypost/virtual-ip``,
``/v1/query/<name>/execute``; a query's answer is cached, so ``Near = "_ip"`` sorts for
the first caller until it goes stale). Reverse lookups are answered from what the agent
holds (its own node), else a server's node list at the address (``ptr``, cached as names are); a
service address is answered only when it is this agent's own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import msgspec
import orjson

from waypost.agent.dns_rows import ROWS, DnsNode, DnsRow, tagged_instances
from waypost.agent.views import Views
from waypost.api.http import Request, Response, settled
from waypost.dns.backend import DnsBackend, Instance, NodeRecord, Pending, PreparedResult
from waypost.durations import parse_duration

__all__ = ["FRESH", "MAX_ENTRIES", "Ask", "ServerDnsBackend"]

log = logging.getLogger("waypost.dns")

FRESH = 1.0
MAX_ENTRIES = 4096

Ask = Callable[[Request], "Response | Awaitable[Response]"]

_SEP = "\x00"
"""Between a cache key's parts; no DNS label holds it."""


class _Unanswered(Exception):
    pass


class _NodeInfo(msgspec.Struct):
    Node: DnsNode


class _VirtualIP(msgspec.Struct):
    IP: str = ""


class _QueryDNS(msgspec.Struct):
    TTL: str = ""


class _Executed(msgspec.Struct):
    Service: str = ""
    Datacenter: str = ""
    Nodes: list[DnsRow] | None = None
    DNS: _QueryDNS = msgspec.field(default_factory=_QueryDNS)


_NAMES = msgspec.json.Decoder(dict[str, Any])
_EXECUTED = msgspec.json.Decoder(_Executed)
_VIP = msgspec.json.Decoder(_VirtualIP | None)
_NODE = msgspec.json.Decoder(_NodeInfo | None)
_NODES = msgspec.json.Decoder(list[DnsNode])

_Tagged = tuple[frozenset[str], Instance]


class ServerDnsBackend:
    """A ``DnsBackend`` over a server's answers; ``local`` answers what the agent holds."""

    def __init__(
        self,
        local: DnsBackend,
        ask: Ask,
        token: Callable[[], str],
        *,
        fresh: float = FRESH,
        stale: bool = True,
        clock: Callable[[], float] = time.monotonic,
        views: Views | None = None,
    ) -> None:
        self._local = local
        self._views = views
        self._ask = ask
        self._token = token
        self._fresh = fresh
        self._query = "stale" if stale else ""
        self._clock = clock
        self._entries: dict[str, tuple[float, Any]] = {}
        self._next_expiry = float("inf")
        self._generation = 0
        self._reading: dict[str, asyncio.Task[None]] = {}

    @property
    def datacenter(self) -> str:
        return self._local.datacenter

    def revision(self) -> int:
        """Moves when a name lands or an entry goes stale, so that the resolver's answers
        built from it are built again."""
        now = self._clock()
        if now >= self._next_expiry:
            self._generation += 1
            self._next_expiry = min(
                (at for at, _ in self._entries.values() if at > now), default=float("inf")
            )
        views = self._views.generation if self._views is not None else 0
        return self._local.revision() + self._generation + views

    def _cached(self, *parts: str) -> Any:
        """The value kept for the name ``parts`` make while fresh, else ``Pending`` on it."""
        key = _SEP.join(parts)
        found = self._entries.get(key)
        if found is None or found[0] <= self._clock():
            return Pending(key)
        return found[1]

    def service_instances(
        self, service: str, tag: str | None, *, connect: bool = False
    ) -> Sequence[Instance] | Pending:
        if not connect and self._views is not None:
            view = self._views.ready(service.lower(), self._token() or "")
            if view is not None and len(view):
                return view.instances(tag)
        found = self._cached("connect" if connect else "service", service.lower())
        if isinstance(found, Pending):
            return found
        tagged: list[_Tagged] = found
        wanted = tag.lower() if tag is not None else None
        return [inst for tags, inst in tagged if wanted is None or wanted in tags]

    def node(self, name: str) -> NodeRecord | Pending | None:
        record: NodeRecord | Pending | None = self._cached("node", name.lower())
        return record

    def nodes_by_address(self, address: str) -> Sequence[NodeRecord] | Pending:
        """This agent's own node, else the nodes a server lists at ``address``."""
        own = self._local.nodes_by_address(address)
        if own:
            return own
        found: Sequence[NodeRecord] | Pending = self._cached("ptr", address)
        return found

    def services_by_address(self, address: str) -> Sequence[Instance]:
        return self._local.services_by_address(address)

    def prepared_query(self, name_or_id: str, client_ip: str = "") -> PreparedResult | Pending | None:
        result: PreparedResult | Pending | None = self._cached("query", name_or_id)
        return result

    def virtual_ip(self, name: str) -> str | Pending | None:
        ip: str | Pending | None = self._cached("vip", name.lower())
        return ip

    async def fail_over(self, name_or_id: str) -> None:
        task = self._reading.get(name_or_id)
        if task is None:
            task = asyncio.ensure_future(self._read(name_or_id))
            self._reading[name_or_id] = task
            task.add_done_callback(lambda _: self._reading.pop(name_or_id, None))
        await asyncio.shield(task)

    async def _read(self, key: str) -> None:
        kind, name = key.split(_SEP, 1)
        try:
            value = await self._fetch(kind, name)
        except (_Unanswered, msgspec.DecodeError) as exc:
            log.warning("DNS: reading %s %r from a server failed: %s", kind, name, exc)
            old = self._entries.get(key)
            if old is not None:
                self._keep(key, old[1])  # a stale answer beats none while no server answers
            return
        self._keep(key, value)

    async def _fetch(self, kind: str, name: str) -> Any:
        if kind == "ptr":
            wanted = urlencode({"filter": f"Address == {orjson.dumps(name).decode()}"})
            return [n.record() for n in _NODES.decode(await self._get("/v1/catalog/nodes", wanted))]
        if kind == "node":
            info = _NODE.decode(await self._get(f"/v1/catalog/node/{name}"))
            return info.Node.record() if info is not None else None
        if kind == "vip":
            vip = _VIP.decode(await self._get(f"/v1/waypost/virtual-ip/{name}"))
            return vip.IP if vip is not None else None
        if kind == "query":
            return await self._execute(name)
        area = "connect" if kind == "connect" else "service"
        found = tagged_instances(ROWS.decode(await self._get(f"/v1/health/{area}/{name}")))
        if found and kind == "service" and self._views is not None:
            self._views.follow(name, self._token() or "")
        if not found:
            # DNS names are case-blind, the servers' service reads are not: try the names
            # that fold to this one (one catalog read, and only for a name not found).
            names = _NAMES.decode(await self._get("/v1/catalog/services"))
            for real in sorted(n for n in names if n.lower() == name and n != name):
                found += tagged_instances(ROWS.decode(await self._get(f"/v1/health/{area}/{real}")))
        return found

    async def _execute(self, name: str) -> PreparedResult | None:
        """A prepared query executed by a server; an unknown one is None (NXDOMAIN)."""
        token = self._token()
        req = Request("GET", f"/v1/query/{name}/execute", "", {"x-consul-token": token} if token else {}, b"")
        resp = await self._answer(req)
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise _Unanswered(f"{resp.status} {resp.body[:200]!r}")
        run = _EXECUTED.decode(resp.body)
        ttl = parse_duration(run.DNS.TTL) if run.DNS.TTL else None
        return PreparedResult(
            run.Service, run.Datacenter, [inst for _, inst in tagged_instances(run.Nodes)], ttl
        )

    def _keep(self, key: str, value: Any) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        expires = self._clock() + self._fresh
        self._entries[key] = (expires, value)
        self._next_expiry = min(self._next_expiry, expires)
        self._generation += 1

    async def _get(self, path: str, query: str = "") -> bytes:
        token = self._token()
        both = "&".join(q for q in (self._query, query) if q)
        req = Request("GET", path, both, {"x-consul-token": token} if token else {}, b"")
        resp = await self._answer(req)
        if resp.status != 200:
            raise _Unanswered(f"{resp.status} {resp.body[:200]!r}")
        return resp.body

    async def _answer(self, req: Request) -> Response:
        return await settled(self._ask(req))
