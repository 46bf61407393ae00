"""Session writes: create with Consul's validation, and destroy releasing its locks atomically."""

from __future__ import annotations

import uuid

import msgspec

from waypost.state import schema
from waypost.state.catalog_ops import CatalogError, guard
from waypost.state.kv_ops import LockDelays
from waypost.state.model import KVEntry, Session
from waypost.state.state import State, TxnPlan
from waypost.store.base import Compare, Delete, LeaseNotFoundError, Op, Put

__all__ = [
    "SESSION_TTL_MULTIPLIER",
    "after_session",
    "create_session",
    "destroy_session",
    "release_orphaned_locks",
    "renew_session",
    "sessions_to_invalidate",
]


SESSION_TTL_MULTIPLIER = 2
"""Consul invalidates a TTL session only after twice its TTL without a renew."""


def after_session(entry: KVEntry, behavior: str) -> KVEntry | None:
    """What a key becomes when the session holding it ends: deleted (None) for a
    ``delete`` session, released otherwise, as Consul's session Behavior says."""
    return None if behavior == "delete" else msgspec.structs.replace(entry, Session="")


def _freed_op(key: str, entry: KVEntry, behavior: str) -> Op:
    freed = after_session(entry, behavior)
    return Delete(key) if freed is None else Put(key, schema.encode(freed))


async def create_session(state: State, session: Session, ttl: float = 0.0) -> str:
    """Store ``session`` (ID assigned here); raises CatalogError with Consul's messages.

    A TTL session lives on a store lease of twice its TTL, so renewing it is a lease
    keep-alive that any agent can send, and its expiry needs no timer on any server."""
    if session.Behavior not in ("release", "delete"):
        raise CatalogError(f"Invalid Behavior setting '{session.Behavior}'")
    sid = session.ID or str(uuid.uuid4())
    record = msgspec.structs.replace(session, ID=sid)
    lease = 0

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
        return compares, [Put(key, schema.encode(record), lease)]

    if ttl > 0:
        lease = await state.store.lease_grant(ttl * SESSION_TTL_MULTIPLIER)
    try:
        await state.write(plan)
    except BaseException:
        if lease:
            await state.store.lease_revoke(lease)
        raise
    return sid


async def renew_session(state: State, session_id: str) -> bool:
    """Restart a TTL session's lease; False when the session is gone."""
    if session_id not in state.indexes.sessions:
        return False
    lease = state.indexes.session_leases.get(session_id, 0)
    if lease:
        try:
            await state.store.lease_keepalive(lease)
        except LeaseNotFoundError:
            return False
    return True


async def destroy_session(state: State, session_id: str, lock_delays: LockDelays | None = None) -> bool:
    """Delete the session and, in the same transaction, release (or delete, per its
    Behavior) every key it holds and delete the prepared queries bound to it. Returns
    False when it did not exist."""
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
            ops.append(_freed_op(key, entry, session.Behavior))
        # Consul deletes the prepared queries bound to a session with it.
        ops.extend(
            Delete(schema.PREPARED_QUERIES.key(qid))
            for qid, query in idx.prepared_queries.items()
            if query.Session == session_id
        )
        return compares, ops

    lease = state.indexes.session_leases.get(session_id, 0)
    result = await state.write(plan)
    if result is None:
        return False
    if lease:
        await state.store.lease_revoke(lease)
    if lock_delays is not None:
        for key in held:
            lock_delays.set(key, delay)
    return True


async def release_orphaned_locks(state: State, lock_delays: LockDelays | None = None) -> int:
    """Free locks whose session expired through its lease, per the dead session's Behavior."""
    freed = 0
    for sid in [s for s in state.indexes.kv_locks if s not in state.indexes.sessions]:
        dead = state.indexes.dead_sessions.get(sid)
        behavior = dead.Behavior if dead is not None else "release"
        delay = dead.LockDelay / 1e9 if dead is not None else 0.0
        keys: list[str] = []

        def plan(sid: str = sid, behavior: str = behavior, keys: list[str] = keys) -> TxnPlan | None:
            idx = state.indexes
            keys[:] = sorted(idx.kv_locks.get(sid, ()))
            if not keys or sid in idx.sessions:
                return None
            compares: list[Compare] = []
            ops: list[Op] = []
            for key_name in keys:
                entry = idx.kv[key_name]
                key = schema.KVS.key(key_name)
                compares.append(guard(key, entry))
                ops.append(_freed_op(key, entry, behavior))
            return compares, ops

        if await state.write(plan) is not None:
            freed += len(keys)
            if lock_delays is not None:
                for key_name in keys:
                    lock_delays.set(key_name, delay)
    return freed


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
