"""The /v1/txn planner: Consul's transaction verbs run against a private view of the catalog.

Sans-I/O: it reads the in-memory indexes and never the store. Every record a verb reads
is guarded by a compare on its store key, so the plan applies only while nothing it saw
has changed; ``State.write`` recomputes it after a lost race. Each key gets one store op,
the last state the transaction leaves it in, because etcd refuses two ops on one key.
Records this transaction writes carry ``PENDING`` indexes until the commit's revision is
known, which is the index Consul gives every write of one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar, cast

import msgspec

from waypost.agent.leader import SERF_CHECK
from waypost.api.txn_ops import CheckOp, KVOp, NodeOp, ServiceOp, SessionOp, TxnOp
from waypost.gostrconv import go_quote
from waypost.state import schema
from waypost.state.catalog_ops import check_on, guard, keep_node_id
from waypost.state.indexes import Indexes
from waypost.state.model import HealthCheck, KVEntry, Node, NodeService, Session
from waypost.state.session_ops import after_session
from waypost.state.state import TxnPlan
from waypost.store.base import Compare, Delete, Op, Put

__all__ = ["PENDING", "Planner"]

PENDING = -1
"""The index of a record this transaction writes, until the commit's revision replaces it."""

R = TypeVar("R", bound=msgspec.Struct)


class _Failed(Exception):
    """One operation's condition failed; the message is Consul's ``TxnError.What``."""


class Planner:
    """One attempt at a transaction: run ``run`` once, then read ``errors`` or take
    ``store_plan``; after the commit, ``stamp`` the results with its revision."""

    def __init__(self, indexes: Indexes) -> None:
        self.idx = indexes
        self._view: dict[str, Any] = {}
        self._base: dict[str, Any] = {}
        self._compares: dict[str, Compare] = {}
        self._changed: dict[str, None] = {}
        self._dropped: dict[str, None] = {}
        """Coordinates of deleted nodes: records without indexes to guard, and no verb reads them."""
        self.results: list[tuple[str, Any, bool]] = []
        """``(kind, record, with_value)`` per result, kind being Consul's TxnResult member."""
        self.errors: list[tuple[int, str]] = []
        self.leases: list[int] = []
        """Store leases of the sessions deleted, to revoke once committed."""
        self.freed: list[tuple[str, float]] = []
        """Keys whose lock a deleted session lost, with its lock-delay in seconds."""

    def run(self, ops: Sequence[TxnOp]) -> None:
        """Every operation runs, as in Consul, so that all failures are reported at once."""
        for i, op in enumerate(ops):
            try:
                if isinstance(op, KVOp):
                    self._kv_op(op)
                elif isinstance(op, NodeOp):
                    self._node_op(op)
                elif isinstance(op, ServiceOp):
                    self._service_op(op)
                elif isinstance(op, CheckOp):
                    self._check_op(op)
                else:
                    self._session_op(op)
            except _Failed as exc:
                self.errors.append((i, str(exc)))

    def store_plan(self) -> TxnPlan | None:
        ops: list[Op] = [Delete(key) for key in self._dropped]
        for key in self._changed:
            final = self._view[key]
            if final is not None:
                ops.append(Put(key, schema.encode(final)))
            elif self._base[key] is not None or key in self.idx.quarantined:
                ops.append(Delete(key))
        return (list(self._compares.values()), ops) if ops else None

    def stamp(self, revision: int) -> None:
        for _, record, _ in self.results:
            if record.CreateIndex == PENDING:
                record.CreateIndex = revision
            if record.ModifyIndex == PENDING:
                record.ModifyIndex = revision

    # -- the view ----------------------------------------------------------------------

    def _read(self, key: str, base: R | None) -> R | None:
        if key not in self._view:
            self._compares[key] = guard(key, base)
            self._view[key] = self._base[key] = base
        return cast("R | None", self._view[key])

    def _kv(self, key: str) -> KVEntry | None:
        return self._read(schema.KVS.key(key), self.idx.kv.get(key))

    def _node(self, name: str) -> Node | None:
        return self._read(schema.NODES.key(name), self.idx.nodes.get(name))

    def _service(self, node: str, service_id: str) -> NodeService | None:
        return self._read(
            schema.SERVICES.key(node, service_id), self.idx.services.get(node, {}).get(service_id)
        )

    def _check(self, node: str, check_id: str) -> HealthCheck | None:
        return self._read(schema.CHECKS.key(node, check_id), self.idx.checks.get(node, {}).get(check_id))

    def _session(self, session_id: str) -> Session | None:
        return self._read(schema.SESSIONS.key(session_id), self.idx.sessions.get(session_id))

    def _put(self, key: str, record: R, current: R | None) -> R:
        """Write ``record`` unless the key already holds it; returns what the key holds."""
        if current is not None and schema.encode(record) == schema.encode(current):
            return current
        created = current.CreateIndex if current is not None else PENDING  # type: ignore[attr-defined]
        written = msgspec.structs.replace(record, CreateIndex=created, ModifyIndex=PENDING)
        self._view[key] = written
        self._changed[key] = None
        return written

    def _delete(self, key: str) -> None:
        """Of a key already read. A quarantined record reads as absent, yet a delete must
        still remove it from the store, as every other delete path does."""
        if self._view[key] is not None or key in self.idx.quarantined:
            self._view[key] = None
            self._changed[key] = None

    def _unlisted(self, base: str, prefix: str = "") -> list[str]:
        """Names (store keys less ``base``) under ``base + prefix`` that the indexes do not
        list: written by this transaction, or quarantined."""
        start = base + prefix
        return [key[len(base) :] for key in (*self._view, *self.idx.quarantined) if key.startswith(start)]

    def _kv_names(self, prefix: str) -> list[str]:
        return sorted(
            {*(e.Key for e in self.idx.kv_prefix(prefix)), *self._unlisted(schema.KVS.prefix, prefix)}
        )

    def _on_node(self, table: schema.Table[Any], node: str, indexed: Iterable[str]) -> list[str]:
        return sorted({*indexed, *self._unlisted(table.key(node, ""))})

    # -- KV ----------------------------------------------------------------------------

    def _kv_op(self, op: KVOp) -> None:
        verb, key = op.verb, op.key
        if verb == "get-tree":
            found = (self._kv(name) for name in self._kv_names(key))
            self.results.extend(("KV", e, True) for e in found if e is not None)
            return
        if verb == "delete-tree":
            for name in self._kv_names(key):
                self._kv(name)
                self._delete(schema.KVS.key(name))
            return
        cur = self._kv(key)
        if verb in ("set", "cas"):
            if verb == "cas" and not _cas_holds(op.index, cur):
                raise _Failed(f"failed to set key {go_quote(key)}, index is stale")
            self._kv_set(op, cur, cur.Session if cur else "", cur.LockIndex if cur else 0)
        elif verb == "lock":
            self._lock(op, cur)
        elif verb == "unlock":
            if not op.session:
                raise _Failed("missing session")
            if cur is None or cur.Session != op.session:
                raise _Failed(
                    f"failed to unlock key {go_quote(key)}, lock isn't held, or is held by another session"
                )
            self._kv_set(op, cur, "", cur.LockIndex)
        elif verb in ("get", "get-or-empty"):
            if cur is None and verb == "get":
                raise _Failed(f"key {go_quote(key)} doesn't exist")
            empty = KVEntry(Key=key, Flags=op.flags, Session=op.session, ModifyIndex=op.index)
            self.results.append(("KV", cur if cur is not None else empty, True))
        elif verb == "check-index":
            if cur is None:
                raise _Failed(f"failed to check index, key {go_quote(key)} doesn't exist")
            if cur.ModifyIndex != op.index:
                now = f"current modify index {cur.ModifyIndex} != {op.index}"
                raise _Failed(f"failed index check for key {go_quote(key)}, {now}")
            self.results.append(("KV", cur, False))
        elif verb == "check-session":
            if cur is None:
                raise _Failed(f"failed to check session, key {go_quote(key)} doesn't exist")
            if cur.Session != op.session:
                now = f"current session {go_quote(cur.Session)} != {go_quote(op.session)}"
                raise _Failed(f"failed session check for key {go_quote(key)}, {now}")
            self.results.append(("KV", cur, False))
        elif verb == "check-not-exists":
            if cur is not None:
                raise _Failed(f"key {go_quote(key)} exists")
        elif verb == "delete":
            self._delete(schema.KVS.key(key))
        elif verb == "delete-cas":
            # Consul counts a CAS delete of a key that is already gone as done.
            if cur is not None and cur.ModifyIndex != op.index:
                raise _Failed(f"failed to delete key {go_quote(key)}, index is stale")
            self._delete(schema.KVS.key(key))
        else:
            raise _Failed(f"unknown KV verb {go_quote(verb)}")

    def _kv_set(self, op: KVOp, cur: KVEntry | None, session: str, lock_index: int) -> None:
        entry = KVEntry(Key=op.key, Flags=op.flags, Value=op.value, Session=session, LockIndex=lock_index)
        self.results.append(("KV", self._put(schema.KVS.key(op.key), entry, cur), False))

    def _lock(self, op: KVOp, cur: KVEntry | None) -> None:
        if not op.session:
            raise _Failed("missing session")
        if self._session(op.session) is None:
            raise _Failed(f"invalid session {go_quote(op.session)}")
        if cur is not None and cur.Session and cur.Session != op.session:
            raise _Failed(f"failed to lock key {go_quote(op.key)}, lock is already held")
        held = cur is not None and cur.Session == op.session
        lock_index = (cur.LockIndex if cur else 0) + (0 if held else 1)
        self._kv_set(op, cur, op.session, lock_index)

    # -- catalog -----------------------------------------------------------------------

    def _node_op(self, op: NodeOp) -> None:
        name = op.node.Node
        if op.verb == "get":
            found = self._node_by_id(op.node.ID) if op.node.ID else self._node(name)
            if found is None:
                raise _Failed(f"node {go_quote(name)} doesn't exist")
            self.results.append(("Node", found, True))
            return
        cur = self._node(name)
        if op.verb in ("set", "cas"):
            if op.verb == "cas" and not _cas_holds(op.index, cur):
                raise _Failed(f"failed to set node {go_quote(name)}, index is stale")
            self.results.append(("Node", self._set_node(op.node), True))
        elif op.verb in ("delete", "delete-cas"):
            if op.verb == "delete-cas" and (cur is None or cur.ModifyIndex != op.index):
                raise _Failed(f"failed to delete node {go_quote(name)}, index is stale")
            self._delete_node(name)
        else:
            raise _Failed(f"unknown Node verb {go_quote(op.verb)}")

    def _set_node(self, node: Node) -> Node:
        """Consul's ``ensureNodeTxn``: an ID another node holds renames that node, which
        goes with everything on it; a name a healthy node holds under another ID is refused."""
        if node.ID:
            holder = self._node_by_id(node.ID)
            renaming = holder is not None and holder.Node != node.Node
            if holder is None or renaming:
                clash = self._name_clash(node, allow_without_id=holder is None)
                if clash is not None:
                    ident = f"{go_quote(node.ID)} ({node.Address})" if renaming else go_quote(node.ID)
                    raise _Failed(f"Error while renaming Node ID: {ident}: {clash}")
            if holder is not None and renaming:
                self._delete_node(holder.Node)
        cur = self._node(node.Node)
        return self._put(schema.NODES.key(node.Node), keep_node_id(node, cur), cur)

    def _name_clash(self, node: Node, *, allow_without_id: bool) -> str | None:
        """Consul lets a node take a name whose holder is failed (or has no serfHealth
        check, as externally registered nodes do), and one held without an ID when asked."""
        wanted = node.Node.lower()
        names = {n.Node for n in self.idx.nodes.values() if n.Node.lower() == wanted}
        names.update(n.Node for n in self._view.values() if isinstance(n, Node) and n.Node.lower() == wanted)
        for name in sorted(names):
            other = self._node(name)
            if other is None or other.ID == node.ID or (allow_without_id and not other.ID):
                continue
            serf = self._check(name, SERF_CHECK)
            if serf is not None and serf.Status != "critical":
                holder = f"node {other.ID} with name {other.Node} ({other.Address})"
                return f"Node name {node.Node} is reserved by {holder}"
        return None

    def _node_by_id(self, node_id: str) -> Node | None:
        """Consul looks a node up by ID first; the indexes keep nodes by name only."""
        wanted = node_id.lower()
        names = {n.Node for n in self.idx.nodes.values() if n.ID.lower() == wanted}
        names.update(n.Node for n in self._view.values() if isinstance(n, Node) and n.ID.lower() == wanted)
        for name in sorted(names):
            found = self._node(name)
            if found is not None and found.ID.lower() == wanted:
                return found
        return None

    def _delete_node(self, name: str) -> None:
        """The node with everything on it and its coordinates, as catalog deregister does."""
        self._node(name)
        coordinates = (schema.COORDINATES.key(k) for k, c in self.idx.coordinates.items() if c.Node == name)
        self._dropped.update(dict.fromkeys(coordinates))
        for service_id in self._on_node(schema.SERVICES, name, self.idx.services.get(name, {})):
            self._service(name, service_id)
            self._delete(schema.SERVICES.key(name, service_id))
        for check_id in self._on_node(schema.CHECKS, name, self.idx.checks.get(name, {})):
            self._check(name, check_id)
            self._delete(schema.CHECKS.key(name, check_id))
        self._delete(schema.NODES.key(name))

    def _service_op(self, op: ServiceOp) -> None:
        node, service_id = op.node, op.service.ID
        cur = self._service(node, service_id)
        where = f"service {go_quote(service_id)} on node {go_quote(node)}"
        if op.verb == "get":
            if cur is None:
                raise _Failed(f"{where} doesn't exist")
            self.results.append(("Service", cur, True))
        elif op.verb in ("set", "cas"):
            if op.verb == "cas" and not _cas_holds(op.index, cur):
                raise _Failed(f"failed to set {where}, index is stale")
            if self._node(node) is None:
                raise _Failed("Missing node registration")
            stored = self._put(schema.SERVICES.key(node, service_id), op.service, cur)
            self.results.append(("Service", stored, True))
        elif op.verb in ("delete", "delete-cas"):
            if op.verb == "delete-cas" and (cur is None or cur.ModifyIndex != op.index):
                raise _Failed(f"failed to delete {where}, index is stale")
            self._delete_service(node, service_id)
        else:
            raise _Failed(f"unknown Service verb {go_quote(op.verb)}")

    def _delete_service(self, node: str, service_id: str) -> None:
        """The service and its checks, as catalog deregister does."""
        for check_id in self._on_node(schema.CHECKS, node, self.idx.checks.get(node, {})):
            check = self._check(node, check_id)
            if check is not None and check.ServiceID == service_id:
                self._delete(schema.CHECKS.key(node, check_id))
        self._delete(schema.SERVICES.key(node, service_id))

    def _check_op(self, op: CheckOp) -> None:
        node, check_id = op.check.Node, op.check.CheckID
        cur = self._check(node, check_id)
        where = f"check {go_quote(check_id)} on node {go_quote(node)}"
        if op.verb == "get":
            if cur is None:
                raise _Failed(f"{where} doesn't exist")
            self.results.append(("Check", cur, True))
        elif op.verb in ("set", "cas"):
            if op.verb == "cas" and not _cas_holds(op.index, cur):
                raise _Failed(f"failed to set {where}, index is stale")
            if self._node(node) is None:
                raise _Failed("Missing node registration")
            owner = self._service(node, op.check.ServiceID) if op.check.ServiceID else None
            if op.check.ServiceID and owner is None:
                raise _Failed("Missing service registration")
            stored = self._put(schema.CHECKS.key(node, check_id), check_on(op.check, node, owner), cur)
            self.results.append(("Check", stored, True))
        elif op.verb in ("delete", "delete-cas"):
            if op.verb == "delete-cas" and (cur is None or cur.ModifyIndex != op.index):
                raise _Failed(f"failed to delete {where}, index is stale")
            self._delete(schema.CHECKS.key(node, check_id))
        else:
            raise _Failed(f"unknown Check verb {go_quote(op.verb)}")

    # -- sessions ----------------------------------------------------------------------

    def _session_op(self, op: SessionOp) -> None:
        if op.verb != "delete":
            raise _Failed(f"failed to delete session: unknown Session verb {go_quote(op.verb)}")
        session = self._session(op.session)
        if session is None:
            raise _Failed("failed to delete session: failed deleting session: not found")
        held = set(self.idx.kv_locks.get(op.session, ()))
        held.update(e.Key for e in self._view.values() if isinstance(e, KVEntry) and e.Session == op.session)
        for name in sorted(held):
            entry = self._kv(name)
            if entry is None or entry.Session != op.session:
                continue
            key = schema.KVS.key(name)
            freed = after_session(entry, session.Behavior)
            if freed is None:
                self._delete(key)
            else:
                self._put(key, freed, entry)
            self.freed.append((name, session.LockDelay / 1e9))
        self._delete(schema.SESSIONS.key(op.session))
        lease = self.idx.session_leases.get(op.session, 0)
        if lease:
            self.leases.append(lease)


def _cas_holds(index: int, current: Any) -> bool:
    """Consul's check-and-set: index 0 creates only, otherwise the modify index must match."""
    if index == 0:
        return current is None
    return current is not None and current.ModifyIndex == index
