"""Intention writes: one record per (source, destination), each write guarded so that two
agents changing the same pair cannot both believe they won."""

from __future__ import annotations

from collections.abc import Callable

from waypost.state import schema
from waypost.state.catalog_ops import guard
from waypost.state.indexes import Indexes
from waypost.state.model import Intention
from waypost.state.state import State, TxnPlan
from waypost.store.base import Compare, Delete, Op, Put

__all__ = ["intention_id", "remove", "write"]


def intention_id(source: str, destination: str) -> str:
    """The record's key under the table: destination first, so one prefix lists a destination's."""
    return f"{destination}/{source}"


def _key(ixn: Intention) -> str:
    return schema.INTENTIONS.key(intention_id(ixn.SourceName, ixn.DestinationName))


async def write(state: State, build: Callable[[Indexes], tuple[Intention, Intention | None]]) -> Intention:
    """``build`` returns, from the current indexes, the record to store and the one it
    replaces (which may sit under another pair); it may raise to refuse the write."""
    written: list[Intention] = []

    def plan() -> TxnPlan | None:
        idx = state.indexes
        record, replaced = build(idx)
        written[:] = [record]
        key = _key(record)
        current = idx.intentions.get(intention_id(record.SourceName, record.DestinationName))
        compares: list[Compare] = [guard(key, current)]
        ops: list[Op] = [Put(key, schema.encode(record))]
        if replaced is not None and _key(replaced) != key:
            compares.append(guard(_key(replaced), replaced))
            ops.append(Delete(_key(replaced)))
        return compares, ops

    await state.write(plan)
    return written[0]


async def remove(state: State, source: str, destination: str) -> None:
    """Deletes the pair's intention if there is one."""
    ident = intention_id(source, destination)
    key = schema.INTENTIONS.key(ident)

    def plan() -> TxnPlan | None:
        current = state.indexes.intentions.get(ident)
        return None if current is None else ([guard(key, current)], [Delete(key)])

    await state.write(plan)
