"""The store over a real etcd v3 cluster, for server agents that share one catalog.

Talks gRPC through aetcd's generated etcd v3 bindings on a grpc.aio channel: aetcd's
own client knows one host and lacks lease compares, while the raw API maps onto the
``Store`` protocol one call to one RPC. etcd already has every semantic the protocol
promises, so this module only translates; revisions, versions and lease ids are
etcd's own.

Endpoints are tried in turn: an UNAVAILABLE answer (member down, no leader) moves to
the next endpoint, a bounded number of times. A watch that loses its stream resumes on
another endpoint from the revision after the last one it yielded.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from aetcd import rpc  # type: ignore[import-untyped]

from waypost.store.base import (
    CompactedError,
    Compare,
    Delete,
    Event,
    EventType,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Put,
    RangeResult,
    StoreError,
    TxnResult,
)

__all__ = ["EtcdStore"]

T = TypeVar("T")

_ROUNDS = 3
"""How many times every endpoint is tried before a call gives up."""

_BACKOFF = 0.1
"""Seconds between failover attempts, times the attempt number."""

_TARGETS = {
    "value": rpc.Compare.VALUE,
    "version": rpc.Compare.VERSION,
    "create": rpc.Compare.CREATE,
    "mod": rpc.Compare.MOD,
    "lease": rpc.Compare.LEASE,
}
_TARGET_FIELDS = {
    "value": "value",
    "version": "version",
    "create": "create_revision",
    "mod": "mod_revision",
    "lease": "lease",
}
_RESULTS = {
    "=": rpc.Compare.EQUAL,
    "!=": rpc.Compare.NOT_EQUAL,
    "<": rpc.Compare.LESS,
    ">": rpc.Compare.GREATER,
}


@dataclass(frozen=True, slots=True)
class _Stubs:
    """One channel's service stubs; compared by identity to tell which channel failed."""

    channel: Any
    kv: Any
    lease: Any
    watch: Any


class EtcdStore:
    def __init__(self, endpoints: Sequence[str], *, timeout: float = 10.0) -> None:
        """``endpoints`` are ``host:port`` client addresses of one cluster's members."""
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = list(endpoints)
        self._timeout = timeout
        self._index = 0
        self._stubs: _Stubs | None = None
        self._channels: list[Any] = []
        self._streams: set[Any] = set()
        self._closed = False

    def _connect(self) -> _Stubs:
        if self._closed:
            raise StoreError("store is closed")
        if self._stubs is None:
            channel = grpc.aio.insecure_channel(
                self.endpoints[self._index], options=[("grpc.max_receive_message_length", -1)]
            )
            self._channels.append(channel)
            self._stubs = _Stubs(channel, rpc.KVStub(channel), rpc.LeaseStub(channel), rpc.WatchStub(channel))
        return self._stubs

    def _failover(self, broken: _Stubs) -> None:
        # Only the first caller to see a channel fail moves on; the others reuse its choice.
        if self._stubs is broken:
            self._index = (self._index + 1) % len(self.endpoints)
            self._stubs = None

    async def _call(self, call: Callable[[_Stubs], Awaitable[T]]) -> T:
        attempts = len(self.endpoints) * _ROUNDS
        for attempt in range(1, attempts + 1):
            stubs = self._connect()
            try:
                return await call(stubs)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts:
                    raise _translate(exc) from exc
            self._failover(stubs)
            await asyncio.sleep(_BACKOFF * attempt)
        raise StoreError("no etcd endpoint answered")

    async def get(self, key: str) -> KeyValue | None:
        request = rpc.RangeRequest(key=key.encode())
        response = await self._call(lambda s: s.kv.Range(request, timeout=self._timeout))
        return _kv(response.kvs[0]) if response.kvs else None

    async def range(self, prefix: str) -> RangeResult:
        start, end = _span(prefix)
        request = rpc.RangeRequest(key=start, range_end=end)
        response = await self._call(lambda s: s.kv.Range(request, timeout=self._timeout))
        return RangeResult([_kv(kv) for kv in response.kvs], int(response.header.revision))

    async def put(self, key: str, value: bytes, lease: int = 0) -> int:
        request = rpc.PutRequest(key=key.encode(), value=value, lease=lease)
        response = await self._call(lambda s: s.kv.Put(request, timeout=self._timeout))
        return int(response.header.revision)

    async def delete(self, key: str, prefix: bool = False) -> tuple[int, int]:
        request = _delete_request(Delete(key, prefix))
        response = await self._call(lambda s: s.kv.DeleteRange(request, timeout=self._timeout))
        return int(response.deleted), int(response.header.revision)

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        request = rpc.TxnRequest(
            compare=[_compare(c) for c in compares],
            success=[_request_op(op) for op in success],
            failure=[_request_op(op) for op in failure],
        )
        response = await self._call(lambda s: s.kv.Txn(request, timeout=self._timeout))
        revision = int(response.header.revision)
        responses: list[RangeResult | int] = []
        for op in response.responses:
            kind = op.WhichOneof("response")
            if kind == "response_range":
                nested = op.response_range
                responses.append(RangeResult([_kv(kv) for kv in nested.kvs], int(nested.header.revision)))
            elif kind == "response_delete_range":
                responses.append(int(op.response_delete_range.deleted))
            else:
                responses.append(revision)
        return TxnResult(bool(response.succeeded), revision, responses)

    async def revision(self) -> int:
        request = rpc.RangeRequest(key=b"\0")
        response = await self._call(lambda s: s.kv.Range(request, timeout=self._timeout))
        return int(response.header.revision)

    async def compact(self, revision: int) -> None:
        """Drop history before ``revision`` (etcd's Compact, physical)."""
        request = rpc.CompactionRequest(revision=revision, physical=True)
        await self._call(lambda s: s.kv.Compact(request, timeout=self._timeout))

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        return self._watch(prefix, start_revision)

    async def _watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """One etcd watch stream for ``prefix``; ends quietly when the store closes."""
        key, end = _span(prefix)
        cursor = start_revision
        failures = 0
        while not self._closed:
            stubs = self._connect()
            create = rpc.WatchCreateRequest(key=key, range_end=end, start_revision=max(cursor, 0))
            stream = stubs.watch.Watch(_held_open(rpc.WatchRequest(create_request=create)))
            self._streams.add(stream)
            try:
                while (response := await stream.read()) is not grpc.aio.EOF:
                    if response.compact_revision:
                        raise CompactedError(int(response.compact_revision))
                    if response.canceled:
                        raise StoreError(f"etcd cancelled the watch: {response.cancel_reason}")
                    if response.created and cursor <= 0:
                        cursor = int(response.header.revision) + 1
                    failures = 0
                    for batch in _per_revision(response.events):
                        cursor = batch[0].kv.mod_revision + 1
                        yield batch
                # The member ended the stream (it is shutting down): resume on another.
                self._failover(stubs)
                await asyncio.sleep(_BACKOFF)
            except asyncio.CancelledError:
                if self._closing_cancelled():
                    return
                raise
            except grpc.aio.AioRpcError as exc:
                if self._closed:
                    return
                failures += 1
                if exc.code() != grpc.StatusCode.UNAVAILABLE or failures > len(self.endpoints) * _ROUNDS:
                    raise _translate(exc) from exc
                self._failover(stubs)
                await asyncio.sleep(_BACKOFF * failures)
            finally:
                self._streams.discard(stream)
                stream.cancel()

    def _closing_cancelled(self) -> bool:
        """Whether a CancelledError came from ``close`` cancelling a stream, rather than
        from someone cancelling the task that reads it."""
        task = asyncio.current_task()
        return self._closed and (task is None or task.cancelling() == 0)

    async def lease_grant(self, ttl: float) -> int:
        # etcd counts TTLs in whole seconds and may raise a short one to its minimum.
        request = rpc.LeaseGrantRequest(TTL=max(1, math.ceil(ttl)))
        response = await self._call(lambda s: s.lease.LeaseGrant(request, timeout=self._timeout))
        if response.error:
            raise StoreError(response.error)
        return int(response.ID)

    async def lease_keepalive(self, lease: int) -> float:
        async def once(stubs: _Stubs) -> Any:
            stream = stubs.lease.LeaseKeepAlive([rpc.LeaseKeepAliveRequest(ID=lease)], timeout=self._timeout)
            try:
                return await stream.read()
            finally:
                stream.cancel()

        response = await self._call(once)
        if response is grpc.aio.EOF or response.TTL <= 0:
            raise LeaseNotFoundError(f"lease {lease} not found")
        return float(response.TTL)

    async def lease_revoke(self, lease: int) -> None:
        request = rpc.LeaseRevokeRequest(ID=lease)
        try:
            await self._call(lambda s: s.lease.LeaseRevoke(request, timeout=self._timeout))
        except LeaseNotFoundError:
            return

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stubs = None
        for stream in list(self._streams):
            stream.cancel()
        channels, self._channels = self._channels, []
        for channel in channels:
            await channel.close()


async def _held_open(request: Any) -> AsyncIterator[Any]:
    """Send ``request`` and keep the sending side open until the call ends.

    Requests go through an iterator rather than ``write()`` because a ``write()`` still
    waiting for the channel never returns if the call is cancelled meanwhile (``close``).
    """
    yield request
    await asyncio.Event().wait()


def _span(prefix: str) -> tuple[bytes, bytes]:
    """etcd's ``[key, range_end)`` for every key starting with ``prefix``."""
    start = prefix.encode()
    stripped = start.rstrip(b"\xff")
    if not stripped:
        # Every key: etcd reads range_end "\0" as "no upper bound".
        return start or b"\0", b"\0"
    return start, stripped[:-1] + bytes([stripped[-1] + 1])


def _kv(kv: Any) -> KeyValue:
    return KeyValue(
        kv.key.decode(),
        bytes(kv.value),
        int(kv.create_revision),
        int(kv.mod_revision),
        int(kv.version),
        int(kv.lease),
    )


def _per_revision(events: Any) -> list[list[Event]]:
    """Split one watch response, which may span revisions, into per-revision lists."""
    batches: list[list[Event]] = []
    for event in events:
        kind = EventType.DELETE if event.type == rpc.Event.DELETE else EventType.PUT
        converted = Event(kind, _kv(event.kv))
        if batches and batches[-1][0].kv.mod_revision == converted.kv.mod_revision:
            batches[-1].append(converted)
        else:
            batches.append([converted])
    return batches


def _compare(c: Compare) -> Any:
    expected = c.value
    if (c.target == "value") != isinstance(expected, bytes):
        raise StoreError(f"a {c.target} compare needs {'bytes' if c.target == 'value' else 'an int'}")
    return rpc.Compare(
        key=c.key.encode(),
        target=_TARGETS[c.target],
        result=_RESULTS[c.op],
        **{_TARGET_FIELDS[c.target]: expected},
    )


def _delete_request(op: Delete) -> Any:
    if op.prefix:
        start, end = _span(op.key)
        return rpc.DeleteRangeRequest(key=start, range_end=end)
    return rpc.DeleteRangeRequest(key=op.key.encode())


def _request_op(op: Op) -> Any:
    if isinstance(op, Put):
        return rpc.RequestOp(request_put=rpc.PutRequest(key=op.key.encode(), value=op.value, lease=op.lease))
    if isinstance(op, Delete):
        return rpc.RequestOp(request_delete_range=_delete_request(op))
    if op.prefix:
        start, end = _span(op.key)
        return rpc.RequestOp(request_range=rpc.RangeRequest(key=start, range_end=end))
    return rpc.RequestOp(request_range=rpc.RangeRequest(key=op.key.encode()))


def _translate(exc: grpc.aio.AioRpcError) -> StoreError:
    details = exc.details() or str(exc.code())
    if exc.code() == grpc.StatusCode.NOT_FOUND and "lease not found" in details:
        return LeaseNotFoundError(details)
    return StoreError(details)
