"""The store over a real etcd v3 cluster, for server agents that share one catalog.

Talks gRPC through aetcd's generated etcd v3 bindings on a grpc.aio channel: aetcd's
own client knows one host and lacks lease compares, while the raw API maps onto the
``Store`` protocol one call to one RPC. etcd already has every semantic the protocol
promises, so this module only translates; revisions, versions and lease ids are
etcd's own.

Endpoints are tried in turn: an UNAVAILABLE or DEADLINE_EXCEEDED answer (member down,
paused, no leader) moves to the next endpoint, a bounded number of times. A watch that
loses its stream resumes on another endpoint from the revision after the last one it
yielded. A transaction is never blindly re-sent: see ``EtcdStore.txn``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
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
    Range,
    RangeResult,
    StoreError,
    TxnResult,
    TxnTooLargeError,
    check_lease_ttl,
)
from waypost.store.outcome import Found, LearningStore, TxnOutcomeUnknownError, search

__all__ = ["EtcdStore", "TxnOutcomeUnknownError"]

log = logging.getLogger("waypost.store.etcd")

T = TypeVar("T")

_ROUNDS = 3
"""How many times every endpoint is tried before a call gives up."""

_BACKOFF = 0.1
"""Seconds between failover attempts, times the attempt number."""

_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""Answers that say "try another member": it is down, paused, or has no leader."""

_NOT_APPLIED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
"""Failures after which a transaction surely did not apply: etcd refused it before
proposing it (bad request, too large, too many ops) or aborted it whole (unknown lease).
Any other failure, a timeout above all, may come after the write committed."""

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


class EtcdStore(LearningStore):
    _log = log

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """``endpoints`` are ``host:port`` client addresses of one cluster's members; with
        ``credentials`` they are reached over TLS (members verified by their CA, and the
        client certificate, if any, presented to ``--client-cert-auth``)."""
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        super().__init__()
        self.endpoints = list(endpoints)
        self._timeout = timeout
        self._credentials = credentials
        self._index = 0
        self._stubs: _Stubs | None = None
        self._channels: list[Any] = []
        self._streams: set[Any] = set()
        self._closed = False

    def _connect(self) -> _Stubs:
        if self._closed:
            raise StoreError("store is closed")
        if self._stubs is None:
            endpoint, options = self.endpoints[self._index], [("grpc.max_receive_message_length", -1)]
            channel = (
                grpc.aio.secure_channel(endpoint, self._credentials, options=options)
                if self._credentials is not None
                else grpc.aio.insecure_channel(endpoint, options=options)
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
        """``call`` on one member after another until one answers; only for calls that are
        safe to repeat (reads, lease calls), never for a transaction."""
        failed: grpc.aio.AioRpcError | None = None
        for attempt in self._attempts():
            stubs = self._connect()
            try:
                return await call(stubs)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _RETRIED:
                    raise _translate(exc) from exc
                failed = exc
            self._failover(stubs)
            await asyncio.sleep(_BACKOFF * attempt)
        assert failed is not None
        raise _translate(failed) from failed

    def _attempts(self) -> Iterator[int]:
        """Attempt numbers: each endpoint ``_ROUNDS`` times, but for no longer than one
        timeout per endpoint in all, so that a cluster that lost its quorum fails a call in
        bounded time instead of after every attempt has timed out."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._timeout * len(self.endpoints)
        for attempt in range(1, len(self.endpoints) * _ROUNDS + 1):
            yield attempt
            if loop.time() > give_up:
                return

    async def get(self, key: str) -> KeyValue | None:
        request = rpc.RangeRequest(key=key.encode())
        response = await self._call(lambda s: s.kv.Range(request, timeout=self._timeout))
        self._saw(int(response.header.revision))
        return _kv(response.kvs[0]) if response.kvs else None

    async def range(self, prefix: str) -> RangeResult:
        return await self._range(Range(prefix, prefix=True))

    async def _range(self, op: Range, revision: int = 0) -> RangeResult:
        request = _range_request(op, revision)
        response = await self._call(lambda s: s.kv.Range(request, timeout=self._timeout))
        return RangeResult([_kv(kv) for kv in response.kvs], self._saw(int(response.header.revision)))

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        """Apply a transaction, and never answer wrongly about one that was interrupted.

        A transaction whose call times out or loses its connection may still have been
        committed, and sending it again would then evaluate its compares against its own
        writes: a compare-and-swap that won would be answered "failed". So after such a
        failure the outcome is learnt from etcd's history instead. Every revision after
        ``floor`` (the highest revision seen before sending, hence no later than the
        transaction's) is read back with a watch, up to the current revision; etcd gives
        each committed transaction its own revision, so ours applied exactly if one of
        those revisions holds precisely its writes: every put with our value and lease,
        and deletes only inside our delete ranges. If so its result is rebuilt from that
        revision; if not, nothing of it was committed by then and it is sent again.

        After any interrupted attempt a final "failed" answer is checked the same way up
        to its own revision, since the interrupted attempt may have committed in between.
        When the history cannot be read (compacted, too long, no member answers) the call
        raises ``TxnOutcomeUnknownError`` rather than guess. A branch that writes nothing
        moves no revision, so running it twice is the same as running it once.

        Two cases stay open. Another client committing the very same writes in one
        transaction is taken for ours. And etcd cannot withdraw a proposal: an attempt
        that timed out may still commit after the answer came from a later attempt; its
        compares are evaluated then, so a compare-and-swap on a mod revision fails, but an
        unconditional write lands a second time.
        """
        request = rpc.TxnRequest(
            compare=[_compare(c) for c in compares],
            success=[_request_op(op) for op in success],
            failure=[_request_op(op) for op in failure],
        )
        floor = await self._floor()
        interrupted = False
        for attempt in self._attempts():
            stubs = self._connect()
            try:
                response = await stubs.kv.Txn(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _NOT_APPLIED:
                    if interrupted and (found := await self._applied(floor, success, failure)):
                        return found
                    raise _translate(exc) from exc
                interrupted = True
                log.info(
                    "transaction interrupted (%s); reading revisions after %d for it", exc.code().name, floor
                )
                self._failover(stubs)
                if found := await self._applied(floor, success, failure):
                    return found
                await asyncio.sleep(_BACKOFF * attempt)
                continue
            result = _txn_result(response)
            self._saw(result.revision)
            if interrupted and not result.succeeded:
                return await self._applied(floor, success, failure, result.revision) or result
            return result
        raise TxnOutcomeUnknownError(
            "no etcd member completed the transaction; it had not applied when last checked"
        )

    async def _find(
        self, start: int, until: int, success: Sequence[Op], failure: Sequence[Op]
    ) -> Found | None:
        return await self._call(lambda s: search(self._history(s, start), until, success, failure))

    async def _read_at(self, op: Range, revision: int) -> RangeResult:
        return await self._range(op, revision)

    async def _history(self, stubs: _Stubs, start: int) -> AsyncGenerator[list[Event], None]:
        """Every revision from ``start`` on, one list each, from a watch of every key."""
        create = rpc.WatchCreateRequest(key=b"\0", range_end=b"\0", start_revision=start)
        stream = stubs.watch.Watch(_held_open(rpc.WatchRequest(create_request=create)), timeout=self._timeout)
        try:
            while (response := await stream.read()) is not grpc.aio.EOF:
                if response.compact_revision:
                    raise CompactedError(int(response.compact_revision))
                for batch in _per_revision(response.events):
                    yield batch
        finally:
            stream.cancel()

    async def revision(self) -> int:
        request = rpc.RangeRequest(key=b"\0")
        response = await self._call(lambda s: s.kv.Range(request, timeout=self._timeout))
        return self._saw(int(response.header.revision))

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
                        cursor = self._saw(batch[0].kv.mod_revision) + 1
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
                if exc.code() not in _RETRIED or failures > len(self.endpoints) * _ROUNDS:
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
        request = rpc.LeaseGrantRequest(TTL=max(1, math.ceil(check_lease_ttl(ttl))))
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


UNREADABLE_PREFIX = "system/unreadable/"
"""Where a key that is not UTF-8 (written into etcd by hand) appears, hex-encoded: outside every
table, so the catalog ignores it, yet its event still carries its revision through the feed."""


def _key(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        log.warning("etcd key %r is not UTF-8; it is ignored", raw)
        return UNREADABLE_PREFIX + raw.hex()


def _kv(kv: Any) -> KeyValue:
    return KeyValue(
        _key(bytes(kv.key)),
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


def _range_request(op: Range, revision: int = 0) -> Any:
    if op.prefix:
        start, end = _span(op.key)
        return rpc.RangeRequest(key=start, range_end=end, revision=revision)
    return rpc.RangeRequest(key=op.key.encode(), revision=revision)


def _request_op(op: Op) -> Any:
    if isinstance(op, Put):
        return rpc.RequestOp(request_put=rpc.PutRequest(key=op.key.encode(), value=op.value, lease=op.lease))
    if isinstance(op, Delete):
        return rpc.RequestOp(request_delete_range=_delete_request(op))
    return rpc.RequestOp(request_range=_range_request(op))


def _txn_result(response: Any) -> TxnResult:
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


def _translate(exc: grpc.aio.AioRpcError) -> StoreError:
    details = exc.details() or str(exc.code())
    if exc.code() == grpc.StatusCode.NOT_FOUND and "lease not found" in details:
        return LeaseNotFoundError(details)
    if "too many operations in txn request" in details:
        return TxnTooLargeError(details, "--max-txn-ops")
    if "request is too large" in details or "received message larger than max" in details:
        return TxnTooLargeError(details, "--max-request-bytes")
    return StoreError(details)
