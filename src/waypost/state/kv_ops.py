"""KV writes with Consul's lock semantics: cas, acquire, release, delete, lock-delay."""

from __future__ import annotations

import time
from collections.abc import Callable

from waypost.state import schema
from waypost.state.catalog_ops import guard
from waypost.state.model import KVEntry
from waypost.state.state import State, TxnPlan
from waypost.store.base import Compare, Delete, Op, Put

__all__ = ["KVError", "LockDelays", "kv_delete", "kv_set"]


class KVError(ValueError):
    """Consul answers these with 500 and the message (e.g. an unknown session)."""


class LockDelays:
    """Keys whose lock was lost recently and may not be re-acquired until the delay ends.

    Kept in memory on purpose, as Consul does: it only guards against a split-brain
    window, so losing it on restart is harmless.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._until: dict[str, float] = {}
        self._clock = clock

    def set(self, key: str, delay: float) -> None:
        if delay > 0:
            self._until[key] = max(self._until.get(key, 0.0), self._clock() + delay)

    def active(self, key: str) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[key]
            return False
        return True


class _Refused(Exception):
    """The operation's own condition (cas index, lock owner) failed: answer false."""


async def kv_set(
    state: State,
    key: str,
    value: bytes,
    *,
    flags: int = 0,
    cas: int | None = None,
    acquire: str | None = None,
    release: str | None = None,
    lock_delays: LockDelays | None = None,
) -> bool:
    """Consul's PUT /v1/kv/:key. Returns the boolean Consul answers."""

    def plan() -> TxnPlan | None:
        current = state.indexes.kv.get(key)
        entry = KVEntry(Key=key, Flags=flags, Value=value)
        if current is not None:
            entry.Session = current.Session
            entry.LockIndex = current.LockIndex
        if cas is not None and (cas != 0 if current is None else current.ModifyIndex != cas):
            raise _Refused
        if acquire is not None:
            session = state.indexes.sessions.get(acquire)
            if session is None:
                raise KVError(f'invalid session "{acquire}"')
            if current is not None and current.Session and current.Session != acquire:
                raise _Refused
            if (current is None or current.Session != acquire) and lock_delays and lock_delays.active(key):
                raise _Refused
            if current is None or current.Session != acquire:
                entry.LockIndex += 1
            entry.Session = acquire
        if release is not None:
            if current is None or current.Session != release:
                raise _Refused
            entry.Session = ""
        k = schema.KVS.key(key)
        compares: list[Compare] = [guard(k, current)]
        if acquire is not None:
            compares.append(Compare(schema.SESSIONS.key(acquire), "version", ">", 0))
        return compares, [Put(k, schema.encode(entry))]

    try:
        await state.write(plan)
    except _Refused:
        return False
    return True


async def kv_delete(state: State, key: str, *, recurse: bool = False, cas: int | None = None) -> bool:
    """Consul's DELETE /v1/kv/:key; cas=0 never deletes, as in Consul."""

    def plan() -> TxnPlan | None:
        k = schema.KVS.key(key)
        if recurse:
            if not state.indexes.kv_prefix(key) and not state.indexes.quarantined_under(k):
                return None
            return [], [Delete(k, prefix=True)]
        current = state.indexes.kv.get(key)
        if cas is not None and (current is None or current.ModifyIndex != cas):
            raise _Refused
        if current is None:
            # A record that could not be decoded reads as absent, but deleting it must work.
            return ([], [Delete(k)]) if k in state.indexes.quarantined else None
        ops: list[Op] = [Delete(k)]
        return [guard(k, current)], ops

    if cas == 0:
        return False
    try:
        await state.write(plan)
    except _Refused:
        return False
    return True
