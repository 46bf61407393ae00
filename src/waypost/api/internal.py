"""/v1/internal/store: the store interface over HTTP, so client agents can keep their lean
replica (a ``scope`` of keys: ``agent.lean``) while their own writes and leases go through
a server to the real store.

Consul's client agents forward RPCs to servers; waypost's relay registry requests to a
server's HTTP API and use this one for what they hold and write themselves. One record
differs: the Connect CA's private keys stay on servers, so every value of that table a
client is sent (reads, a transaction's reads, watch events) is ``ca_store.without_keys``,
and one a client writes gets them back from the server's copy (``ca_store.with_keys``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.api.common import HTTPError, parse_uint, query_duration
from waypost.api.http import Request, Response
from waypost.api.replica_feed import ReplicaFeed, ReplicaReader
from waypost.api.stream import pump
from waypost.connect import ca_store
from waypost.connect.ca_config import CAConfigError
from waypost.state import schema
from waypost.state.model import ConnectCA
from waypost.state.state import State
from waypost.store import wire
from waypost.store.base import (
    Delete,
    Event,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Put,
    RangeResult,
    StoreError,
    TxnResult,
)
from waypost.store.keyspace import check_duplicates

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["PROGRESS", "EventRing"]

log = logging.getLogger("waypost.api.internal")

_MSGPACK = "application/msgpack"

_RECORD_OVERHEAD = 64 * 1024
"""Room for a KV record's key and other fields beside a value of the largest allowed size."""

_MAX_LEASE_TTL = 9_000_000_000.0
"""etcd's MaxLeaseTTL in seconds; a longer TTL would be refused there as an internal error."""

PROGRESS = 15.0
"""Seconds between the frames that bring quiet replica streams to the current revision."""


class EventRing:
    """The last ``size`` store revisions this server applied, for clients' watches, and
    each one published to the replica streams (``feed``) as it is applied.

    Batches are kept as tuples of gc=False events, which the garbage collector stops
    tracking: 20,000 kept lists would be walked by every full collection, a pause that
    lands on every request the server is answering."""

    def __init__(self, state: State, size: int = 20000) -> None:
        self._batches: deque[tuple[int, tuple[Event, ...]]] = deque(maxlen=size)
        self._state = state
        self._relists = state.relists
        self.first_available = state.indexes.revision + 1
        self.feed = ReplicaFeed(state.indexes.revision)
        self._ticker: asyncio.TimerHandle | None = None
        self._arrived = asyncio.Event()
        state.listeners.append(self._on_batch)

    def _on_batch(self, batch: list[Event], revision: int) -> None:
        if self._state.relists != self._relists:
            # A full re-read is no history: clients behind it must re-read too (410).
            self._relists = self._state.relists
            self._batches.clear()
            self.first_available = revision + 1
            self.feed.revision = revision
            self.feed.close_all()
            self._arrived.set()
            self._arrived = asyncio.Event()
            return
        if len(self._batches) == self._batches.maxlen:
            self.first_available = self._batches[0][0] + 1
        if any(_holds_ca_keys(ev.kv.key, ev.kv.value) for ev in batch):
            batch = [Event(ev.type, _for_clients(ev.kv)) for ev in batch]
        self._batches.append((revision, tuple(batch)))
        self.feed.publish(revision, batch)
        self._arrived.set()
        self._arrived = asyncio.Event()

    def since(self, start: int) -> list[tuple[Event, ...]] | None:
        """Batches at or after ``start``; None when they are no longer kept."""
        if start < self.first_available:
            return None
        found: list[tuple[Event, ...]] = []
        for rev, events in reversed(self._batches):
            if rev < start:
                break
            found.append(events)
        found.reverse()
        return found

    def follow(self, reader: ReplicaReader) -> None:
        """Add ``reader`` to the feed, whose quiet readers are brought to the current
        revision every ``PROGRESS`` seconds while any is connected."""
        self.feed.add(reader)
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().call_later(PROGRESS, self._tick)

    def _tick(self) -> None:
        self._ticker = None
        if len(self.feed):
            self.feed.tick()
            self._ticker = asyncio.get_running_loop().call_later(PROGRESS, self._tick)

    async def wait(self, limit: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), limit)


def _holds_ca_keys(key: str, value: bytes) -> bool:
    return key.startswith(schema.CONNECT_CA.prefix) and bool(value)


def _for_clients(kv: KeyValue) -> KeyValue:
    """``kv`` as a client agent may hold it: a CA record without its private keys (one
    that does not decode is sent empty, which clients set aside as they do any bad record)."""
    if not _holds_ca_keys(kv.key, kv.value):
        return kv
    value, create, modify = schema.carried(kv.value)
    try:
        stripped = schema.encode(ca_store.without_keys(schema.CONNECT_CA.decode(value, 0, 0)))
    except msgspec.DecodeError:
        stripped = b""
    if stripped and (create or modify):
        stripped = schema.carry(stripped, create, modify)
    return msgspec.structs.replace(kv, value=stripped)


def _range_for_clients(result: RangeResult) -> RangeResult:
    return RangeResult([_for_clients(kv) for kv in result.kvs], result.revision)


def _packed(body: bytes, status: int = 200) -> Response:
    return Response(body, status, _MSGPACK)


async def range_(app: ApiApp, req: Request) -> Response:
    """A prefix's keys; with ``scope`` (repeated, see ``wire.in_scope``) only the keys of a
    lean client's replica, read in one transaction so that they share one revision."""
    scope = _scope(req)
    if not scope:
        result = await app.state.store.range(req.arg("prefix") or "")
        return _packed(wire.encode(_range_for_clients(result)))
    read = await app.state.store.txn([], wire.scope_ranges(scope))
    kvs = [kv for r in read.responses if not isinstance(r, int) for kv in r.kvs]
    return _packed(wire.encode(_range_for_clients(RangeResult(kvs, read.revision))))


def _scope(req: Request) -> list[str]:
    scope = req.args("scope") if req.raw_query else []
    if len(scope) > wire.MAX_TXN_OPS:
        raise HTTPError(400, f"Invalid scope: at most {wire.MAX_TXN_OPS} entries")
    if "" in scope:
        raise HTTPError(400, "Invalid scope: an empty entry")
    return scope


async def get(app: ApiApp, req: Request) -> Response:
    key = req.arg("key")
    if not key:
        raise HTTPError(400, "Missing key")
    found = await app.state.store.get(key)
    return _packed(wire.encode(found if found is None else _for_clients(found)))


async def revision(app: ApiApp, req: Request) -> Response:
    return _packed(wire.encode(await app.state.store.revision()))


async def txn(app: ApiApp, req: Request) -> Response:
    try:
        compares, success, failure = wire.decode_txn_request(req.body)
    except ValueError as exc:
        raise HTTPError(400, f"bad store transaction: {exc}") from None
    max_value = app.agent.config.limits.kv_max_value_size + _RECORD_OVERHEAD
    _check_writes(success, max_value)
    _check_writes(failure, max_value)
    current = app.state.indexes.connect_ca.get("state")
    try:
        result = await app.state.store.txn(
            compares, _with_ca_keys(success, current), _with_ca_keys(failure, current)
        )
    except LeaseNotFoundError:
        return _packed(wire.encode(False), 404)
    responses = [r if isinstance(r, int) else _range_for_clients(r) for r in result.responses]
    return _packed(wire.encode_txn_result(TxnResult(result.succeeded, result.revision, responses)))


def _with_ca_keys(ops: Sequence[Op], current: ConnectCA | None) -> list[Op]:
    """A CA record a client writes (a restored snapshot) with the keys it was never sent."""
    keyed: list[Op] = []
    for op in ops:
        if isinstance(op, Put) and _holds_ca_keys(op.key, op.value):
            value, create, modify = schema.carried(op.value)
            try:
                record = ca_store.with_keys(schema.CONNECT_CA.decode(value, 0, 0), current)
            except CAConfigError as exc:
                raise HTTPError(400, f"Invalid value for key {op.key!r}: {exc}") from None
            value = schema.encode(record)
            op = Put(op.key, schema.carry(value, create, modify) if create or modify else value, op.lease)
        keyed.append(op)
    return keyed


def _check_writes(ops: Sequence[Op], max_value: int) -> None:
    """Refuse what the catalog's readers could not load: every client agent and server
    decodes each record it is sent, so one undecodable value, or a key outside the
    layout of ``schema``, would stall every replica's state feed. A decode is the cheapest
    complete check, and it runs once per write, on the server only."""
    for op in ops:
        if isinstance(op, Put):
            table = _table_of(op.key, prefix=False)
            if len(op.value) > max_value:
                raise HTTPError(
                    400, f"Value for key {op.key!r} too large ({len(op.value)} bytes, max {max_value})"
                )
            try:
                table.decode(op.value, 0, 0)
            except msgspec.DecodeError as exc:
                record = table.record.__name__
                raise HTTPError(
                    400, f"Invalid value for key {op.key!r}: not a {record} record: {exc}"
                ) from None
        elif isinstance(op, Delete):
            # Any key of a table, so that a record the readers quarantined can be removed.
            _table_of(op.key, prefix=True)
    try:
        check_duplicates(ops)
    except StoreError as exc:
        raise HTTPError(400, f"bad store transaction: {exc}") from None


def _table_of(key: str, *, prefix: bool) -> schema.Table[Any]:
    """The table ``key`` belongs to, which a whole key must fit the layout of; a prefix may
    name a whole table but never span two."""
    table = next((t for t in schema.TABLES if key.startswith(t.prefix)), None)
    if table is None:
        raise HTTPError(400, f"Invalid key {key!r}: not under any table prefix")
    if not prefix:
        try:
            table.split(key)
        except ValueError as exc:
            raise HTTPError(400, f"Invalid key {key!r}: {exc}") from None
    return table


async def watch(app: ApiApp, req: Request) -> Response:
    start = parse_uint(req, "from", default=1)
    wait = query_duration(req, "wait", "Invalid wait time") or 30.0
    if _scope(req):
        raise HTTPError(400, "Invalid scope: a replica's scope is followed by /v1/internal/store/stream")
    ring = app.event_ring
    batches = ring.since(start)
    if batches is None:
        return _packed(wire.encode(ring.first_available), 410)
    if not batches:
        await ring.wait(min(wait, 300.0))
        batches = ring.since(start)
        if batches is None:
            return _packed(wire.encode(ring.first_available), 410)
    return _packed(wire.encode(batches))


def stream(app: ApiApp, req: Request) -> Response:
    """A lean client's replica, kept by one stream (``api.replica_feed``): a frame with the
    batches at or after ``from`` cut to ``scope``, then one per revision touching it, and
    every ``PROGRESS`` seconds of silence one that only brings the client to the current
    revision, so a client none of whose keys change is never left behind the ring's
    history. A ``from`` the ring no longer holds is answered 410, as a watch's is."""
    start = parse_uint(req, "from", default=1)
    scope = _scope(req)
    if not scope:
        raise HTTPError(400, "Missing scope")
    ring = app.event_ring
    if ring.since(start) is None:
        return _packed(wire.encode(ring.first_available), 410)
    reader = ReplicaReader(scope, start)

    def follow() -> bool:
        """The catch-up cut and the joining of the feed in one step: no revision between."""
        batches = ring.since(start)
        if batches is None:
            return False
        kept = [
            mine
            for batch in batches
            if (mine := tuple(ev for ev in batch if wire.in_scope(ev.kv.key, reader.scope)))
        ]
        reader.push(wire.encode_frame(ring.feed.revision, kept))
        ring.follow(reader)
        return True

    def cut() -> None:
        ring.feed.cut_off += 1
        log.warning(
            "replica stream of %s fell more than %d bytes behind; disconnected", req.remote, reader.limit
        )

    stream = pump(reader, req, follow, lambda: ring.feed.remove(reader), cut)
    return Response(content_type=_MSGPACK, stream=stream)


async def lease(app: ApiApp, req: Request) -> Response:
    store = app.state.store
    action, _, ident = req.param.partition("/")
    try:
        if action == "grant":
            return _packed(wire.encode(await store.lease_grant(_lease_ttl(req))))
        if action == "keepalive":
            return _packed(wire.encode(await store.lease_keepalive(_lease_id(ident))))
        if action == "revoke":
            await store.lease_revoke(_lease_id(ident))
            return _packed(wire.encode(True))
    except LeaseNotFoundError:
        return _packed(wire.encode(False), 404)
    raise HTTPError(404, f"unknown lease action {action!r}")


def _lease_ttl(req: Request) -> float:
    ttl = query_duration(req, "ttl", "Invalid ttl")
    if ttl is None or not 0 < ttl <= _MAX_LEASE_TTL:
        raise HTTPError(
            400, f"Invalid ttl: {req.arg('ttl')!r} must be a positive duration up to {_MAX_LEASE_TTL:.0f}s"
        )
    return ttl


def _lease_id(ident: str) -> int:
    if not ident:
        raise HTTPError(400, "Missing lease id")
    if not (ident.isascii() and ident.isdigit()) or int(ident) > wire.MAX_INT64:
        raise HTTPError(400, f"Invalid lease id {ident!r}: not an unsigned 64-bit integer")
    return int(ident)
