"""The store interface on the wire, for client agents that reach the store through a server.

msgpack via msgspec: the same encoder both ends, and the dataclasses of ``base`` decode
back to themselves. A transaction request travels as tagged structs because the op union
of ``base`` is untagged, and because a server must type-check what a client sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec

from waypost.store.base import Compare, Delete, Event, KeyValue, Op, Put, Range, RangeResult, TxnResult

__all__ = [
    "MAX_FRAME",
    "MAX_INT64",
    "MAX_TXN_OPS",
    "FrameReader",
    "decode_events",
    "decode_kv",
    "decode_number",
    "decode_range",
    "decode_scoped_events",
    "decode_txn_request",
    "decode_txn_result",
    "encode",
    "encode_frame",
    "encode_txn_request",
    "encode_txn_result",
    "in_scope",
    "scope_ranges",
]

_ENC = msgspec.msgpack.Encoder()
_EVENTS = msgspec.msgpack.Decoder(list[list[Event]])
_KV = msgspec.msgpack.Decoder(KeyValue | None)
_RANGE = msgspec.msgpack.Decoder(RangeResult)
_SCOPED_EVENTS = msgspec.msgpack.Decoder(tuple[int, list[list[Event]]])

MAX_INT64 = 2**63 - 1

Uint64 = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
"""A revision, version or lease id: etcd keeps them as int64, never negative."""

Key = Annotated[str, msgspec.Meta(min_length=1)]
"""etcd refuses an empty key ("key is not provided"), except as a whole-store prefix."""

MAX_TXN_OPS = 128
"""etcd's default ``--max-txn-ops``, per list: a longer list would be refused there anyway."""


class WireCompare(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: Key
    target: Literal["value", "version", "create", "mod", "lease"]
    op: Literal["=", "!=", "<", ">"]
    value: Uint64 | bytes

    def __post_init__(self) -> None:
        if (self.target == "value") != isinstance(self.value, bytes):
            wanted = "bytes" if self.target == "value" else "an unsigned integer"
            raise ValueError(f"a {self.target} compare needs {wanted} as its value")


class WirePut(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="put"):
    key: Key
    value: bytes
    lease: Uint64 = 0


class WireDelete(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="delete"):
    key: str
    prefix: bool = False

    def __post_init__(self) -> None:
        if not (self.key or self.prefix):
            raise ValueError("key is not provided")


class WireRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind", tag="range"):
    key: str
    prefix: bool = False

    def __post_init__(self) -> None:
        if not (self.key or self.prefix):
            raise ValueError("key is not provided")


WireOp = WirePut | WireDelete | WireRange
Ops = Annotated[list[WireOp], msgspec.Meta(max_length=MAX_TXN_OPS)]


class WireTxn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A transaction request as it travels; decoding it is the whole type check, so a
    malformed field fails here with its path (``$.success[3].lease``) and never reaches
    a backend, where it would surface as an internal error."""

    compares: Annotated[list[WireCompare], msgspec.Meta(max_length=MAX_TXN_OPS)] = []
    success: Ops = []
    failure: Ops = []


def encode(value: Any) -> bytes:
    return _ENC.encode(value)


def _wire_op(op: Op) -> WireOp:
    if isinstance(op, Put):
        return WirePut(op.key, op.value, op.lease)
    if isinstance(op, Delete):
        return WireDelete(op.key, op.prefix)
    return WireRange(op.key, op.prefix)


def _op(op: WireOp) -> Op:
    if isinstance(op, WirePut):
        return Put(op.key, op.value, op.lease)
    if isinstance(op, WireDelete):
        return Delete(op.key, op.prefix)
    return Range(op.key, op.prefix)


def encode_txn_request(compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op]) -> bytes:
    return _ENC.encode(
        WireTxn(
            [WireCompare(c.key, c.target, c.op, c.value) for c in compares],
            [_wire_op(o) for o in success],
            [_wire_op(o) for o in failure],
        )
    )


_TXN_REQ = msgspec.msgpack.Decoder(WireTxn)


def decode_txn_request(body: bytes) -> tuple[list[Compare], list[Op], list[Op]]:
    """Raises ``ValueError`` (msgspec's errors are ValueErrors) naming the bad field."""
    request = _TXN_REQ.decode(body)
    return (
        [Compare(c.key, c.target, c.op, c.value) for c in request.compares],
        [_op(o) for o in request.success],
        [_op(o) for o in request.failure],
    )


def encode_txn_result(result: TxnResult) -> bytes:
    responses = [r if isinstance(r, int) else (r.kvs, r.revision) for r in result.responses]
    return _ENC.encode((result.succeeded, result.revision, responses))


_TXN_RES = msgspec.msgpack.Decoder(tuple[bool, int, list[int | tuple[list[KeyValue], int]]])


def decode_txn_result(body: bytes) -> TxnResult:
    succeeded, revision, responses = _TXN_RES.decode(body)
    out: list[RangeResult | int] = [r if isinstance(r, int) else RangeResult(r[0], r[1]) for r in responses]
    return TxnResult(succeeded, revision, out)


def decode_events(body: bytes) -> list[list[Event]]:
    return _EVENTS.decode(body)


def decode_kv(body: bytes) -> KeyValue | None:
    kv: KeyValue | None = _KV.decode(body)
    return kv


_NUMBER = msgspec.msgpack.Decoder(int | float)


def decode_number(body: bytes) -> int:
    return int(_NUMBER.decode(body))


def decode_range(body: bytes) -> RangeResult:
    return _RANGE.decode(body)


def in_scope(key: str, scope: Sequence[str]) -> bool:
    """Whether ``key`` is in a replica's scope: an entry ending in ``/`` is a prefix (a
    table, or one node's rows of a node-scoped table), any other entry one exact key (a
    node's record, whose name may be the start of another node's)."""
    return any(key.startswith(entry) if entry.endswith("/") else key == entry for entry in scope)


def scope_ranges(scope: Sequence[str]) -> list[Op]:
    """The reads that load a scope, as one transaction's Range ops: one revision for all."""
    return [Range(entry, prefix=entry.endswith("/")) for entry in scope]


def decode_scoped_events(body: bytes) -> tuple[int, list[list[Event]]]:
    """A scoped watch's answer: the revision it read up to, and the batches in scope."""
    return _SCOPED_EVENTS.decode(body)


MAX_FRAME = 64 << 20
"""The largest replica stream frame a client takes: a revision holds at most a
transaction's writes, each within the server's value limit, far below this."""


def encode_frame(reached: int, batches: Sequence[Sequence[Event]]) -> bytes:
    """One frame of a replica stream: its length (4 bytes, big-endian), then what a scoped
    watch answers, the revision the reader is brought to and the batches in its scope."""
    body = _ENC.encode((reached, batches))
    return len(body).to_bytes(4, "big") + body


class FrameReader:
    """The frames of a replica stream out of its chunks, however the chunks cut them."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def raw(self, chunk: bytes) -> list[bytes]:
        """The frames ``chunk`` completes, still encoded (for a reader that decodes only some);
        raises ValueError for a stream that is not one."""
        buf = self._buf
        buf += chunk
        frames = []
        pos = 0
        while len(buf) - pos >= 4:
            size = int.from_bytes(buf[pos : pos + 4], "big")
            if size > MAX_FRAME:
                raise ValueError(f"a replica stream frame of {size} bytes (at most {MAX_FRAME})")
            if len(buf) - pos - 4 < size:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        del buf[:pos]
        return frames

    def feed(self, chunk: bytes) -> list[tuple[int, list[list[Event]]]]:
        """The frames ``chunk`` completes, decoded; raises ValueError for a stream that is not one."""
        try:
            return [_SCOPED_EVENTS.decode(frame) for frame in self.raw(chunk)]
        except msgspec.DecodeError as exc:
            raise ValueError(f"a malformed replica stream frame: {exc}") from None
