"""One simulated client agent of ``cluster_sim.py``, speaking only the servers' wire protocols.

A real client agent keeps a scoped replica through a server's ``/v1/internal/store`` API
(msgpack bodies, ``waypost.store.wire``): the members, liveness, leader, ACL tables, CA
roots and its own node's rows (``agent.lean.replica_scope``), loaded once and then kept by
one stream from a server (``/v1/internal/store/stream``). Join writes its member record,
takes a lease and puts its liveness key on it, and syncs its node, services and checks;
heartbeats keep the lease alive, and anti-entropy diffs the local checks against the
replica's copy of its own rows, writing only what differs. A simulated node does the same
requests, the stream with the same scope, on two keep-alive connections, so that thousands
fit in one process: it does not decode what the stream sends beyond its own rows, and it
does not load the scope at start (``cluster_sim.py`` opens every stream after the joins,
from one revision).

Subscriptions follow one service's health on the server's public HTTP port: the delta
stream (``/v1/stream/health/service/<name>``), which feeds a real client's views, and, for
comparison, the blocking query (``/v1/health/service/<name>?index=I``) a client relaying
each read would send. Each counts the bytes it received after its first answer and reports
every index it reaches to a ``Ledger``, which times the changes; the replica stream reports
the membership changes it is sent the same way.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httptools
import msgspec
from _common import HttpConn

from waypost.agent.lean import replica_scope
from waypost.state import schema
from waypost.store import wire
from waypost.store.base import Delete, Event, EventType, Op, Put

_STORE = "/v1/internal/store"
_ID = re.compile(rb"\nid: (\d+)\n")
_INDEX = re.compile(rb"\r\nX-Consul-Index: (\d+)\r\n", re.I)
_LENGTH = re.compile(rb"\r\nContent-Length: (\d+)\r\n", re.I)
_PACK = msgspec.msgpack.Encoder()

MEMBERSHIP = "membership"
"""The Ledger's name for member and liveness changes, which are in every node's scope."""
_REACHED = msgspec.msgpack.Decoder(tuple[int, msgspec.Raw])
_MEMBERSHIP_KEYS = (schema.MEMBERS.prefix.encode(), schema.LIVENESS.prefix.encode())


class SimError(Exception):
    """A server refused or failed a simulated node's request."""


@dataclass
class Ledger:
    """Every change made (service, revision, time written) and every index move a subscriber
    saw (matched after the run: a subscriber can see a write before its writer hears back)."""

    changes: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    moves: dict[str, list[tuple[str, int, int, float]]] = field(
        default_factory=lambda: {"stream": [], "blocking": [], "replica": []}
    )
    received: dict[str, int] = field(default_factory=dict)
    recording: bool = False

    def changed(self, service: str, revision: int, written: float) -> None:
        bisect.insort(self.changes.setdefault(service, []), (revision, written))

    def reached(self, kind: str, service: str, old: int, new: int, nbytes: int) -> None:
        """A subscriber of ``service`` moved from index ``old`` to ``new`` now."""
        if self.recording:
            self.count(kind, nbytes)
            if new > old:
                self.moves[kind].append((service, old, new, time.monotonic()))

    def count(self, kind: str, nbytes: int) -> None:
        if self.recording:
            self.received[kind] = self.received.get(kind, 0) + nbytes

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
        self.watches = 0
        self.scope = replica_scope(self.name)
        self.own: dict[str, bytes] = {}
        """The replica's copy of this node's check rows, kept by the stream."""
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
        await self.txn([Put(schema.MEMBERS.key(self.name), self._member())])
        self.lease = wire.decode_number(await self._call("PUT", f"/lease/grant?ttl={ttl:g}s"))
        await self.txn([Put(schema.LIVENESS.key(self.name), _PACK.encode({"Node": self.name}), self.lease)])
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
        # What the start-up load of its scope would hold of its own checks.
        self.own = {check_key(self.name, s): _check(self.name, s, "passing") for s in self.services}

    def _member(self) -> bytes:
        tags = {"dc": "dc1", "role": "node", "id": self.name}
        return _PACK.encode(
            {"Name": self.name, "Addr": self.address, "Tags": tags, "HTTPAddr": f"{self.address}:8500"}
        )

    async def restart(self) -> list[tuple[int, float]]:
        """The node dies and comes back, as every other node's replica sees it: its liveness
        key goes (its lease lapsed), then it writes its member record and liveness key again
        (on the same lease here, which changes none of the three events). Each write's
        (revision, time started)."""
        written = []
        for op in (
            Delete(schema.LIVENESS.key(self.name)),
            Put(schema.MEMBERS.key(self.name), self._member()),
            Put(schema.LIVENESS.key(self.name), _PACK.encode({"Node": self.name}), self.lease),
        ):
            start = time.monotonic()
            written.append((await self.txn([op]), start))
        return written

    async def revision(self) -> int:
        return wire.decode_number(await self._call("GET", "/revision"))

    async def heartbeat(self) -> None:
        await self._call("PUT", f"/lease/keepalive/{self.lease}")

    async def flip(self, service: str) -> int:
        """The service's check changes status, as a TTL check would, and is synced: the revision."""
        status = self.status[service] = "critical" if self.status[service] == "passing" else "passing"
        return await self.txn([Put(check_key(self.name, service), _check(self.name, service, status))])

    async def anti_entropy(self) -> int:
        """Compare the replica's checks of this node with the local ones; rewrite what differs."""
        stale = [
            Put(check_key(self.name, s), _check(self.name, s, st))
            for s, st in self.status.items()
            if self.own.get(check_key(self.name, s)) != _check(self.name, s, st)
        ]
        if stale:
            await self.txn(stale)
        return len(stale)

    async def load_scope(self) -> int:
        """A real client's start-up load of its whole scope (one transaction of ranges): bytes."""
        query = urlencode([("scope", entry) for entry in self.scope])
        return len(await self._call("GET", f"/range?{query}"))

    async def watch(self, start: int, ledger: Ledger, ready: asyncio.Event) -> None:
        """The replica's stream from revision ``start``, as RemoteStore follows it: every
        frame is counted, and the membership changes it carries are timed. Read by a protocol
        of its own rather than a task: at thousands of nodes the simulator's cost per frame
        would otherwise be part of every delay it measures."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda: _ReplicaStream(self, start, ledger, ended), "127.0.0.1", self.conn.port,
            local_addr=(self.source, 0),
        )  # fmt: skip
        query = urlencode([("from", str(start)), *(("scope", entry) for entry in self.scope)])
        try:
            transport.write(f"GET {_STORE}/stream?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            ready.set()
            await ended
        finally:
            transport.close()

    def replicated(self, batches: list[list[Event]]) -> None:
        """The replica's own check rows, as the stream changed them."""
        own_checks = schema.CHECKS.key(self.name, "")
        for batch in batches:
            for ev in batch:
                if ev.kv.key.startswith(own_checks):
                    if ev.type is EventType.DELETE:
                        self.own.pop(ev.kv.key, None)
                    else:
                        self.own[ev.kv.key] = ev.kv.value


class _ReplicaStream(asyncio.Protocol):
    """One node's replica stream: httptools undoes the chunking, ``wire.FrameReader`` splits
    the frames; only frames holding the node's own rows are decoded whole."""

    def __init__(self, node: SimNode, start: int, ledger: Ledger, ended: asyncio.Future[None]) -> None:
        self.node = node
        self.ledger = ledger
        self.ended = ended
        self.reached = start - 1
        self.mine = schema.CHECKS.key(node.name, "").encode()
        self.frames = wire.FrameReader()
        self.parser = httptools.HttpResponseParser(self)

    def on_body(self, data: bytes) -> None:
        if self.parser.get_status_code() != 200:
            return  # not a stream: data_received reports it
        for frame in self.frames.raw(data):
            self.frame(frame)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
            if self.parser.get_status_code() != 200:
                raise SimError(f"{self.node.name} replica stream: {data[:200]!r}")
        except Exception as exc:
            if not self.ended.done():
                self.ended.set_exception(exc)
            return
        self.ledger.count("replica", len(data))

    def frame(self, frame: bytes) -> None:
        self.node.watches += 1
        if self.mine in frame:
            new, batches = wire.decode_scoped_events(frame)
            self.node.replicated(batches)
        else:
            new = _REACHED.decode(frame)[0]
        if any(k in frame for k in _MEMBERSHIP_KEYS):
            self.ledger.reached("replica", MEMBERSHIP, self.reached, new, 0)
            self.ledger.count("replica, membership answers", len(frame) + 4)
        self.reached = max(self.reached, new)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ended.done():
            self.ended.set_exception(exc or SimError(f"{self.node.name} replica stream ended"))


async def _answer(r: asyncio.StreamReader, what: str) -> tuple[bytes, bytes]:
    """One HTTP answer with a Content-Length: its head and its body."""
    head = await r.readuntil(b"\r\n\r\n")
    length = _LENGTH.search(head)
    if length is None:
        raise SimError(f"{what}: unexpected answer {head[:200]!r}")
    return head, await r.readexactly(int(length.group(1)))


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
            head, body = await _answer(r, f"blocking query of {service}")
            found = _INDEX.search(head)
            if found is None:
                raise SimError(f"blocking query of {service}: unexpected answer {head[:200]!r}")
            new = int(found.group(1))
            if index:
                ledger.reached("blocking", service, index, new, len(head) + len(body))
            index = new
            ready.set()
    finally:
        w.close()
