"""The store interface on the wire, for client agents that reach the store through a server.

msgpack via msgspec: the same encoder both ends, and the dataclasses of ``base`` decode
back to themselves. Ops travel as tagged tuples because their union is untagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from waypost.store.base import Compare, Delete, Event, KeyValue, Op, Put, Range, RangeResult, TxnResult

__all__ = [
    "decode_events",
    "decode_kv",
    "decode_number",
    "decode_range",
    "decode_txn_request",
    "decode_txn_result",
    "encode",
    "encode_txn_request",
    "encode_txn_result",
]

_ENC = msgspec.msgpack.Encoder()
_EVENTS = msgspec.msgpack.Decoder(list[list[Event]])
_KV = msgspec.msgpack.Decoder(KeyValue | None)
_RANGE = msgspec.msgpack.Decoder(RangeResult)

OpTuple = tuple[str, str, bytes, int]
CompareTuple = tuple[str, str, str, int | bytes]


def encode(value: Any) -> bytes:
    return _ENC.encode(value)


def _op(op: Op) -> OpTuple:
    if isinstance(op, Put):
        return ("put", op.key, op.value, op.lease)
    if isinstance(op, Delete):
        return ("delete", op.key, b"", int(op.prefix))
    return ("range", op.key, b"", int(op.prefix))


def _unop(raw: OpTuple) -> Op:
    kind, key, value, extra = raw
    if kind == "put":
        return Put(key, value, extra)
    if kind == "delete":
        return Delete(key, bool(extra))
    if kind == "range":
        return Range(key, bool(extra))
    raise ValueError(f"unknown store op {kind!r}")


def encode_txn_request(compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op]) -> bytes:
    return _ENC.encode(
        (
            [(c.key, c.target, c.op, c.value) for c in compares],
            [_op(o) for o in success],
            [_op(o) for o in failure],
        )
    )


_TXN_REQ = msgspec.msgpack.Decoder(tuple[list[CompareTuple], list[OpTuple], list[OpTuple]])


def decode_txn_request(body: bytes) -> tuple[list[Compare], list[Op], list[Op]]:
    compares, success, failure = _TXN_REQ.decode(body)
    return (
        [Compare(k, t, o, v) for k, t, o, v in compares],  # type: ignore[arg-type]
        [_unop(o) for o in success],
        [_unop(o) for o in failure],
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
