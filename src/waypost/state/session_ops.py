"""Session writes: create with Consul's validation, and destroy releasing its locks atomically."""

from __future__ import annotations

import uuid

import msgspec

from waypost.state import schema
from waypost.state.catalog_ops import CatalogError, guard
from waypost.state.kv_ops import LockDelays
from waypost.state.model import Session
from waypost.state.state import State, TxnPlan
from waypost.store.base import Compare, Delete, Op, Put

__all__ = ["create_session", "destroy_session", "sessions_to_invalidate"]


async def create_session(state: State, session: Session) -> str:
    """Store ``session`` (ID assigned here); raises CatalogError with Consul's messages."""
    if session.Behavior not in ("release", "delete"):
        raise CatalogError(f"Invalid Behavior setting '{session.Behavior}'")
    sid = session.ID or str(uuid.uuid4())
    record = msgspec.structs.replace(session, ID=sid)

    def plan() -> TxnPlan | None:
        idx = state.indexes
        if record.Node not in idx.nodes:
            raise CatalogError(f"Missing node registration: {record.Node}")
        node_checks = idx.checks.get(record.Node, {})
        wanted = [*record.NodeChecks, *(c.get("ID", "") for c in record.ServiceChecks)]
        compares: list[Compare] = [Compare(schema.NODES.key(record.Node), "version", ">", 0)]
        for check_id in wanted:
            check = node_checks.get(check_id)
            if check is None:
                raise CatalogError(f"Missing check '{check_id}' registration")
            if check.Status == "critical":
                raise CatalogError(f"Check '{check_id}' is in critical state")
            compares.append(guard(schema.CHECKS.key(record.Node, check_id), check))
        key = schema.SESSIONS.key(sid)
        compares.append(Compare(key, "version", "=", 0))
        return compares, [Put(key, schema.encode(record))]

    await state.write(plan)
    return sid


async def destroy_session(state: State, session_id: str, lock_delays: LockDelays | None = None) -> bool:
    """Delete the session and, in the same transaction, release (or delete, per its
    Behavior) every key it holds. Returns False when it did not exist."""
    held: list[str] = []
    delay = 0.0

    def plan() -> TxnPlan | None:
        idx = state.indexes
        session = idx.sessions.get(session_id)
        if session is None:
            return None
        nonlocal delay
        delay = session.LockDelay / 1e9
        held.clear()
        compares: list[Compare] = [guard(schema.SESSIONS.key(session_id), session)]
        ops: list[Op] = [Delete(schema.SESSIONS.key(session_id))]
        for key_name in sorted(idx.kv_locks.get(session_id, ())):
            entry = idx.kv[key_name]
            held.append(entry.Key)
            key = schema.KVS.key(entry.Key)
            compares.append(guard(key, entry))
            if session.Behavior == "delete":
                ops.append(Delete(key))
            else:
                ops.append(Put(key, schema.encode(msgspec.structs.replace(entry, Session=""))))
        return compares, ops

    result = await state.write(plan)
    if result is None:
        return False
    if lock_delays is not None:
        for key in held:
            lock_delays.set(key, delay)
    return True


def sessions_to_invalidate(state: State) -> list[str]:
    """Sessions whose node is gone or any of whose checks is gone or critical (Consul's rule)."""
    idx = state.indexes
    doomed = []
    for sid, session in idx.sessions.items():
        if session.Node not in idx.nodes:
            doomed.append(sid)
            continue
        checks = idx.checks.get(session.Node, {})
        wanted = [*session.NodeChecks, *(c.get("ID", "") for c in session.ServiceChecks)]
        if any(cid not in checks or checks[cid].Status == "critical" for cid in wanted):
            doomed.append(sid)
    return doomed
