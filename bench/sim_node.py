"""One simulated client agent of ``cluster_sim.py``, speaking only the servers' wire protocols.

A real client agent keeps its catalog replica, its membership and its liveness through a
server's ``/v1/internal/store`` API (msgpack bodies, ``waypost.store.wire``): join writes
its member record, takes a lease and puts its liveness key on it, and anti-entropy writes
its node, services and checks; heartbeats keep the lease alive. A simulated node does the
same requests on one keep-alive connection, without a replica, so that thousands fit in
one process: its anti-entropy reads its own checks back from the server instead of from a
local copy, which costs the server one small range per node per interval.

Subscriptions follow one service's health two ways side by side, on the server's public
HTTP port: the delta stream (``/v1/stream/health/service/<name>``) and the blocking query
(``/v1/health/service/<name>?index=I``). Each counts the bytes it received after its first
answer and reports every index it reaches to a ``Ledger``, which times the changes.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import time
from dataclasses import dataclass, field

import msgspec
from _common import HttpConn

from waypost.store import wire
from waypost.store.base import Op, Put

_STORE = "/v1/internal/store"
_ID = re.compile(rb"\nid: (\d+)\n")
_INDEX = re.compile(rb"\r\nX-Consul-Index: (\d+)\r\n", re.I)
_LENGTH = re.compile(rb"\r\nContent-Length: (\d+)\r\n", re.I)
_PACK = msgspec.msgpack.Encoder()


class SimError(Exception):
    """A server refused or failed a simulated node's request."""


@dataclass
class Ledger:
    """Every change made (service, revision, time written) and every index move a subscriber
    saw (matched after the run: a subscriber can see a write before its writer hears back)."""

    changes: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    moves: dict[str, list[tuple[str, int, int, float]]] = field(
        default_factory=lambda: {"stream": [], "blocking": []}
    )
    received: dict[str, int] = field(default_factory=lambda: {"stream": 0, "blocking": 0})
    recording: bool = False

    def changed(self, service: str, revision: int, written: float) -> None:
        bisect.insort(self.changes.setdefault(service, []), (revision, written))

    def reached(self, kind: str, service: str, old: int, new: int, nbytes: int) -> None:
        """A subscriber of ``service`` moved from index ``old`` to ``new`` now."""
        if self.recording:
            self.received[kind] += nbytes
            if new > old:
                self.moves[kind].append((service, old, new, time.monotonic()))

    def delays(self, kind: str) -> list[float]:
        """Seconds from each change's write to each subscriber that saw it, sorted."""
        out = []
        for service, old, new, seen in self.moves[kind]:
            changes = self.changes.get(service, [])
            lo = bisect.bisect_right(changes, (old, float("inf")))
            hi = bisect.bisect_right(changes, (new, float("inf")))
            out += [seen - written for _, written in changes[lo:hi]]
        return sorted(out)


def _check(node: str, service: str, status: str) -> bytes:
    return _PACK.encode(
        {"Node": node, "CheckID": f"service:{service}", "Name": f"Service '{service}' check",
         "Status": status, "ServiceID": service, "ServiceName": service, "Type": "ttl"}
    )  # fmt: skip


def source_address(index: int) -> str:
    """A loopback address of the node's own: servers limit connections per client address
    (``http_max_conns_per_client``), and real client agents each have theirs."""
    return f"127.{1 + index // 65536}.{index // 256 % 256}.{index % 256}"


async def _connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, limit=1 << 22, local_addr=(source, 0))


def check_key(node: str, service: str) -> str:
    return f"catalog/checks/{node}/service:{service}"


class SimNode:
    """One client agent: its registration, its lease and its connection to one server."""

    def __init__(self, index: int, services: list[str], server_port: int) -> None:
        self.name = f"sim-{index}"
        self.address = f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"
        self.source = source_address(index)
        self.services = services
        self.status = dict.fromkeys(services, "passing")
        self.conn = HttpConn(server_port)
        self.lease = 0
        self.requests = 0
        self._lock = asyncio.Lock()

    async def _call(self, method: str, path: str, body: bytes = b"") -> bytes:
        async with self._lock:  # one request at a time on the node's one connection
            status, _, payload = await self.conn.request(method, _STORE + path, body)
        self.requests += 1
        if status != 200:
            raise SimError(f"{self.name} {method} {path}: {status} {payload[:200]!r}")
        return payload

    async def txn(self, ops: list[Op]) -> int:
        result = wire.decode_txn_result(
            await self._call("POST", "/txn", wire.encode_txn_request([], ops, []))
        )
        return result.revision

    async def join(self, ttl: float) -> None:
        """What a client agent writes when it joins and first syncs its node."""
        self.conn.reader, self.conn.writer = await _connect(self.conn.port, self.source)
        tags = {"dc": "dc1", "role": "node", "id": self.name}
        member = {"Name": self.name, "Addr": self.address, "Tags": tags, "HTTPAddr": f"{self.address}:8500"}
        await self.txn([Put(f"system/members/{self.name}", _PACK.encode(member))])
        self.lease = wire.decode_number(await self._call("PUT", f"/lease/grant?ttl={ttl:g}s"))
        await self.txn([Put(f"system/liveness/{self.name}", _PACK.encode({"Node": self.name}), self.lease)])
        ops: list[Op] = [
            Put(
                f"catalog/nodes/{self.name}",
                _PACK.encode({"ID": self.name, "Node": self.name, "Address": self.address}),
            )
        ]
        for i, svc in enumerate(self.services):
            record = {"ID": svc, "Service": svc, "Port": 8000 + i, "Tags": ["v1"]}
            ops.append(Put(f"catalog/services/{self.name}/{svc}", _PACK.encode(record)))
            ops.append(Put(check_key(self.name, svc), _check(self.name, svc, "passing")))
        await self.txn(ops)

    async def heartbeat(self) -> None:
        await self._call("PUT", f"/lease/keepalive/{self.lease}")

    async def flip(self, service: str) -> int:
        """The service's check changes status, as a TTL check would, and is synced: the revision."""
        status = self.status[service] = "critical" if self.status[service] == "passing" else "passing"
        return await self.txn([Put(check_key(self.name, service), _check(self.name, service, status))])

    async def anti_entropy(self) -> int:
        """Compare the server's checks of this node with the local ones; rewrite what differs."""
        body = await self._call("GET", f"/range?prefix=catalog/checks/{self.name}/")
        stored = {kv.key: kv.value for kv in wire.decode_range(body).kvs}
        stale = [
            Put(check_key(self.name, s), _check(self.name, s, st))
            for s, st in self.status.items()
            if stored.get(check_key(self.name, s)) != _check(self.name, s, st)
        ]
        if stale:
            await self.txn(stale)
        return len(stale)


async def follow_stream(port: int, source: str, service: str, ledger: Ledger, ready: asyncio.Event) -> None:
    """A delta-stream subscriber: its snapshot, then every change, until cancelled."""
    r, w = await _connect(port, source)
    try:
        w.write(f"GET /v1/stream/health/service/{service} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        buf = b""
        while b"event: end-of-snapshot" not in buf:
            chunk = await r.read(1 << 20)
            if not chunk:
                raise SimError(f"stream of {service} closed before its snapshot")
            buf += chunk
        tail = buf[buf.index(b"event: end-of-snapshot") :]
        index = int(_ID.findall(b"\n" + tail)[0])
        ready.set()
        while chunk := await r.read(1 << 20):
            ids = _ID.findall(tail + chunk)
            tail = chunk[-64:]
            new = max(index, int(ids[-1])) if ids else index
            ledger.reached("stream", service, index, new, len(chunk))
            index = new
    finally:
        w.close()


async def follow_blocking(port: int, source: str, service: str, ledger: Ledger, ready: asyncio.Event) -> None:
    """A blocking-query subscriber, re-armed with each answer's index as Consul's clients do."""
    r, w = await _connect(port, source)
    index = 0
    try:
        while True:
            query = f"?index={index}&wait=5m" if index else ""
            w.write(f"GET /v1/health/service/{service}{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await r.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            found = _INDEX.search(head)
            if length is None or found is None:
                raise SimError(f"blocking query of {service}: unexpected answer {head[:200]!r}")
            await r.readexactly(int(length.group(1)))
            new = int(found.group(1))
            if index:
                ledger.reached("blocking", service, index, new, len(head) + int(length.group(1)))
            index = new
            ready.set()
    finally:
        w.close()
