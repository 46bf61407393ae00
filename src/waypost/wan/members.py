"""The WAN pool as one server sees it: the servers of the other datacenters and whether
they answer. No I/O here: the prober reports what each probe saw, with the time it read
from the injected clock, and the table turns that into Serf's member states.

Liveness is first-hand only. What a peer says about a third server adds that server to
the table (that is how every server of a datacenter is learned from one join) but never
changes the status of one already known: only this server's own probes do. Nor does it
move a server that answered this one (joined, or probed) to another address while that
server may still be there, as memberlist refuses a conflicting address.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec

__all__ = ["ALIVE", "FAILED", "LEFT", "Exchange", "WanEntry", "WanMembers", "WanServer"]

ALIVE, LEFT, FAILED = 1, 3, 4
"""Serf's member status codes, as ``agent/members`` reports them."""

_DC_NAME = re.compile(r"^[a-z0-9_-]+$", re.IGNORECASE)
_RTT_WEIGHT = 0.25
"""Weight of the newest round trip in the smoothed one."""
_RECLAIM = 30.0
"""Seconds a server must have been failed before hearsay may move it to another address:
memberlist's ``DeadNodeReclaimTime``, which Consul sets to 30s on its WAN pool."""


class WanEntry(msgspec.Struct, forbid_unknown_fields=False):
    """One server on the wire: its name, datacenter, HTTP API base URL and DNS address, and
    the round trip the sender measured to it (seconds), if any."""

    Name: str
    Datacenter: str
    URL: str
    DNS: str = ""
    Status: int = ALIVE
    RTT: float | None = None


class Exchange(msgspec.Struct, forbid_unknown_fields=False):
    """What two servers swap on each probe: the sender itself and every server it knows."""

    Self: WanEntry
    Servers: list[WanEntry] = []


def valid(entry: WanEntry) -> str | None:
    """Why ``entry`` cannot be taken into the table, or None when it can."""
    if not entry.Name:
        return "Name is empty"
    if not _DC_NAME.match(entry.Datacenter):
        return f"Datacenter {entry.Datacenter!r} is not a datacenter name"
    if not entry.URL.startswith(("http://", "https://")):
        return f"URL {entry.URL!r} is not an http:// or https:// URL"
    if entry.Status not in (ALIVE, LEFT, FAILED):
        return f"Status {entry.Status} is not a member status"
    return None


@dataclass(slots=True)
class WanServer:
    name: str
    datacenter: str
    url: str
    dns: str = ""
    status: int = ALIVE
    failures: int = 0
    rtt: float | None = None
    """Smoothed round trip of this server's probes, in seconds; None until one answered."""
    since: float = 0.0
    """When ``status`` last changed (clock seconds)."""
    confirmed: bool = False
    """Whether ``url`` is first-hand: the server itself answered this one with it."""

    @property
    def key(self) -> str:
        return f"{self.name}.{self.datacenter}"

    def entry(self) -> WanEntry:
        return WanEntry(self.name, self.datacenter, self.url, self.dns, self.status, self.rtt)


class WanMembers:
    """Servers of datacenters other than ``datacenter``, keyed ``node.dc`` as Consul names them."""

    def __init__(
        self,
        datacenter: str,
        *,
        clock: Callable[[], float],
        suspicion: int = 6,
        reconnect_timeout: float = 72 * 3600.0,
    ) -> None:
        self.datacenter = datacenter
        self._clock = clock
        self._suspicion = suspicion
        self._reconnect = reconnect_timeout
        self._servers: dict[str, WanServer] = {}

    def servers(self) -> list[WanServer]:
        return sorted(self._servers.values(), key=lambda s: s.key)

    def get(self, key: str) -> WanServer | None:
        return self._servers.get(key)

    def learn(self, entries: Iterable[WanEntry]) -> list[WanServer]:
        """Take in servers a peer told of (or one joined); returns those new to the table. A
        known server keeps its status, and its address unless ``_may_move`` it."""
        new = []
        for entry in entries:
            if entry.Datacenter == self.datacenter or valid(entry) is not None:
                continue
            key = f"{entry.Name}.{entry.Datacenter}"
            known = self._servers.get(key)
            if known is None:
                server = WanServer(entry.Name, entry.Datacenter, entry.URL, entry.DNS, entry.Status)
                server.since = self._clock()
                self._servers[key] = server
                new.append(server)
            elif known.url != entry.URL:
                if self._may_move(known):
                    known.url, known.dns, known.confirmed = entry.URL, entry.DNS, False
            elif entry.DNS and not known.dns:
                known.dns = entry.DNS
        return new

    def answered(self, entry: WanEntry, rtt: float | None) -> WanServer | None:
        """A server answered a probe (or probed us: then ``rtt`` is None); it speaks for itself."""
        if entry.Datacenter == self.datacenter or valid(entry) is not None:
            return None
        self.learn([entry])
        server = self._servers[f"{entry.Name}.{entry.Datacenter}"]
        server.url = entry.URL
        server.dns = entry.DNS or server.dns
        server.confirmed = True
        server.failures = 0
        self._set(server, LEFT if entry.Status == LEFT else ALIVE)
        if rtt is not None:
            server.rtt = rtt if server.rtt is None else server.rtt + _RTT_WEIGHT * (rtt - server.rtt)
        return server

    def _may_move(self, server: WanServer) -> bool:
        """Whether hearsay may give ``server`` another address: one only heard of may be
        refreshed, one that answered this one only once it left or has been failed for
        ``_RECLAIM``; before that, another's word must not redirect traffic meant for it."""
        if not server.confirmed or server.status == LEFT:
            return True
        return server.status == FAILED and self._clock() - server.since >= _RECLAIM

    def missed(self, key: str) -> None:
        """A probe of ``key`` got no answer in time: failed after ``suspicion`` misses in a row."""
        server = self._servers.get(key)
        if server is None or server.status == LEFT:
            return
        server.failures += 1
        if server.failures >= self._suspicion:
            self._set(server, FAILED)

    def reap(self) -> list[str]:
        """Forget servers failed or left longer than the reconnect timeout."""
        now = self._clock()
        gone = [k for k, s in self._servers.items() if s.status != ALIVE and now - s.since >= self._reconnect]
        for key in gone:
            del self._servers[key]
        return gone

    def mirror(self, entries: Iterable[WanEntry]) -> None:
        """Become the view a server of this datacenter has (a client agent's copy): its
        servers of other datacenters, with the status and round trip it measured."""
        servers = {}
        for entry in entries:
            if entry.Datacenter != self.datacenter and valid(entry) is None:
                server = WanServer(
                    entry.Name, entry.Datacenter, entry.URL, entry.DNS, entry.Status, rtt=entry.RTT
                )
                servers[server.key] = server
        self._servers = servers

    def _set(self, server: WanServer, status: int) -> None:
        if server.status != status:
            server.status = status
            server.since = self._clock()

    def route(self, dc: str) -> list[WanServer]:
        """The alive servers of ``dc``, nearest first: where a request for it goes."""
        alive = [s for s in self._servers.values() if s.datacenter == dc and s.status == ALIVE]
        return sorted(alive, key=lambda s: (math.inf if s.rtt is None else s.rtt, s.name))

    def datacenters_by_distance(self) -> list[str]:
        """Every other datacenter known, nearest first by the median round trip to its
        servers (Consul's ``GetDatacentersByDistance``); unmeasured ones last, by name."""
        rtts: dict[str, list[float]] = {}
        for server in self._servers.values():
            found = rtts.setdefault(server.datacenter, [])
            if server.rtt is not None and server.status == ALIVE:
                found.append(server.rtt)

        def distance(dc: str) -> tuple[float, str]:
            return (statistics.median(rtts[dc]) if rtts[dc] else math.inf, dc)

        return sorted(rtts, key=distance)

    def rtt_to(self, key: str) -> float | None:
        server = self._servers.get(key)
        return None if server is None else server.rtt
