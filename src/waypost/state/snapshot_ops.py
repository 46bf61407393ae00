"""Save and restore: a snapshot archive from one consistent store read, and back into the store.

What a restore keeps and what it cannot:

- every snapshotted record comes back byte for byte (catalog nodes, services and checks,
  KV entries with their flags, ``LockIndex`` and lock holder, sessions, coordinates), and
  records of those tables that the snapshot does not hold are deleted;
- every record shows the ``CreateIndex``/``ModifyIndex`` it was saved with, as Consul's
  restore keeps them: only the store assigns revisions, so the value carries them
  (``schema.carry``). A later write keeps the CreateIndex and shows its own revision as
  ModifyIndex. ``X-Consul-Index`` stays a store revision: every restored record is written
  above everything before it, so indexes only go up and blocking queries wake, where
  Consul's may go back to the snapshot's (see the package README);
- a TTL session gets a fresh lease of twice its TTL (Consul also restarts session timers
  on restore), and the leases of the sessions it replaced are revoked afterwards;
- transient tables (members, liveness, leader, events) are left as they are.

The restore is one store transaction, so readers see the old state or the new one, never a
mix. Only a store that refuses a transaction for its size (``TxnTooLargeError``: etcd's
``--max-txn-ops``, 128 by default, or ``--max-request-bytes``, 1.5 MiB; a client agent's
server, which holds its callers to etcd's defaults) gets the same writes in consecutive
transactions instead, halved again while they are still refused, with a warning naming the
setting an atomic restore needs. The archive was fully verified before the first, so a bad
file still changes nothing, but readers may then see a partly restored catalog while it
runs. The writes are idempotent (puts of the final values, deletes of keys that must go),
so re-sending them after a refusal whose outcome is unknown is safe.

A write racing a restore may survive it, as with Consul, where a restore is one more
Raft entry: restores are meant for a quiet cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from waypost.durations import parse_duration
from waypost.state import schema
from waypost.state import snapshot as archive
from waypost.state.session_ops import SESSION_TTL_MULTIPLIER
from waypost.state.state import State
from waypost.store.base import Delete, Op, Put, TxnTooLargeError

__all__ = ["restore", "save"]

log = logging.getLogger("waypost.snapshot")

_CHUNK = 100
"""Ops per transaction when the store refuses one transaction for the whole restore: under
etcd's default limit of 128, with room for its request size limit at typical record sizes;
halved while that is still too large."""


async def save(state: State, servers: Sequence[tuple[str, str]] = ()) -> tuple[bytes, int]:
    """The archive of the store as of one revision, and that revision (``X-Consul-Index``)."""
    read = await state.store.range("")
    return archive.encode(read.kvs, read.revision, servers=servers), read.revision


async def restore(state: State, snap: archive.Snapshot) -> int:
    """Make the snapshotted tables hold exactly ``snap``'s records; returns the last revision.

    Raises ``SnapshotError`` (before any write) when a session's TTL cannot be read back."""
    ttls = _session_ttls(snap)
    store = state.store
    current = [kv for kv in (await store.range("")).kvs if archive.snapshotted(kv.key) is not None]
    wanted = {entry.Key for _, entry in snap.entries}
    old_leases = {kv.lease for kv in current if kv.lease and kv.key.startswith(schema.SESSIONS.prefix)}
    # Leases are granted before the write; should the write fail they hold no keys (unless
    # part of a split restore landed, which then keeps its sessions) and lapse on their own.
    granted = {key: await store.lease_grant(ttl * SESSION_TTL_MULTIPLIER) for key, ttl in ttls.items()}
    granted |= _bound_queries(snap, granted)
    ops: list[Op] = [Delete(kv.key) for kv in current if kv.key not in wanted]
    ops += [
        Put(e.Key, schema.carry(e.Value, e.CreateIndex, e.ModifyIndex), granted.get(e.Key, 0))
        for _, e in snap.entries
    ]
    revision = await _apply(state, ops)
    for lease in old_leases:
        await store.lease_revoke(lease)
    await state.wait_applied(revision)
    return revision


def _bound_queries(snap: archive.Snapshot, granted: dict[str, int]) -> dict[str, int]:
    """Prepared queries bound to a TTL session go on that session's new lease, so that they
    still expire with it, as they did before the snapshot."""
    leases: dict[str, int] = {}
    for _, entry in snap.entries:
        if archive.snapshotted(entry.Key) is not schema.PREPARED_QUERIES:
            continue
        session = schema.PREPARED_QUERIES.decode(entry.Value, 0, 0).Session
        lease = granted.get(schema.SESSIONS.key(session), 0) if session else 0
        if lease:
            leases[entry.Key] = lease
    return leases


def _session_ttls(snap: archive.Snapshot) -> dict[str, float]:
    ttls: dict[str, float] = {}
    for _, entry in snap.entries:
        table = archive.snapshotted(entry.Key)
        if table is not schema.SESSIONS:
            continue
        session = schema.SESSIONS.decode(entry.Value, 0, 0)
        if not session.TTL:
            continue
        try:
            ttl = parse_duration(session.TTL)
        except ValueError:
            raise archive.SnapshotError(
                f"failed to read snapshot file: session {session.ID} has an invalid TTL {session.TTL!r}"
            ) from None
        if ttl > 0:  # Consul reads a zero TTL as none
            ttls[entry.Key] = ttl
    return ttls


async def _apply(state: State, ops: list[Op]) -> int:
    if not ops:
        return await state.store.revision()
    try:
        return (await state.store.txn([], ops)).revision
    except TxnTooLargeError as exc:
        size = sum(len(op.key) + len(op.value) for op in ops if isinstance(op, Put))
        need = f"{len(ops)} operations" if exc.setting == "--max-txn-ops" else f"more than {size} bytes"
        log.warning(
            "the store refused the restore as one transaction (%s), so it is written in parts and "
            "readers may see it half done; an atomic restore needs etcd's %s to allow %s",
            exc,
            exc.setting,
            need,
        )
    revision, start, step = 0, 0, _CHUNK
    while start < len(ops):
        try:
            revision = (await state.store.txn([], ops[start : start + step])).revision
        except TxnTooLargeError:
            if step == 1:
                raise
            step //= 2
            continue
        start += step
    return revision
