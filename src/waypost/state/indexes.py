"""The in-memory catalog every reader uses, fed only by the store's event stream.

Readers (HTTP, DNS, blocking queries) never touch the store: they read these dicts, which
``apply`` keeps equal to the store as of ``revision``. ``apply`` also records which
topics each revision touched, so blocking queries and prepared answers know exactly
what went stale.

A record that cannot be indexed (an undecodable value, a malformed key) is quarantined
and reads as absent instead of stopping ``apply``: every later revision, and every
writer waiting for one, depends on the feed moving past it.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any, NamedTuple

from sortedcontainers import SortedDict

from waypost.state import schema
from waypost.state.model import (
    ACLBootstrap,
    ACLPolicy,
    ACLRole,
    ACLToken,
    ConnectCA,
    Coordinate,
    Graveyard,
    HealthCheck,
    Intention,
    KVEntry,
    Leader,
    Member,
    Node,
    NodeService,
    PreparedQuery,
    Session,
    UserEvent,
    VirtualIP,
    VirtualIPClaim,
    connect_target,
)
from waypost.state.sharing import Sharing
from waypost.state.watch import Topic, Topics
from waypost.store.base import Event, EventType

__all__ = ["Carried", "Indexes", "Rejected"]

ServiceKey = tuple[str, str]  # (node, service id)


def _topics_of(svc: NodeService) -> tuple[Topic, ...]:
    """What a change to ``svc`` touches: its service, and the service it fronts, whose
    Connect readers park on ``("connect", name)`` so that proxies of others never wake them."""
    target = connect_target(svc)
    return (("service", svc.Service), ("connect", target)) if target else (("service", svc.Service),)


class Rejected(NamedTuple):
    """A store record the indexes could not take: wrong key shape or undecodable value."""

    key: str
    revision: int
    reason: str


class Carried(NamedTuple):
    """A record whose value carries its own indexes (``schema.carry``, a snapshot restore):
    what it shows, and the store revision that last wrote it."""

    create: int
    modify: int
    revision: int


class Indexes:
    def __init__(self) -> None:
        self.revision = 0
        self.topics = Topics()
        self.sharing = Sharing()
        self.nodes: dict[str, Node] = {}
        self.services: dict[str, dict[str, NodeService]] = {}
        self.instances: dict[str, dict[ServiceKey, NodeService]] = {}
        self.connect: dict[str, dict[ServiceKey, NodeService]] = {}
        """By the service each takes Connect traffic for (``connect_target``): the records
        ``instances`` holds, under the same keys, so a Connect read never scans the catalog."""
        self._listed = {"service": self.instances, "connect": self.connect}
        self.checks: dict[str, dict[str, HealthCheck]] = {}
        self.kv: SortedDict[str, KVEntry] = SortedDict()
        self.kv_tombstones: SortedDict[str, int] = SortedDict()
        self.graveyard: Graveyard | None = None
        self.kv_reaped_index = 0
        """The highest reap so far: no KV prefix index may fall below it once its tombstones are gone."""
        self.kv_locks: dict[str, set[str]] = {}
        self.sessions: dict[str, Session] = {}
        self.events: SortedDict[str, UserEvent] = SortedDict()
        self.coordinates: dict[str, Coordinate] = {}
        self.session_leases: dict[str, int] = {}
        self.dead_sessions: dict[str, Session] = {}
        self.members: dict[str, Member] = {}
        self.live: set[str] = set()
        self.leader: Leader | None = None
        self.acl_tokens: dict[str, ACLToken] = {}
        self.acl_policies: dict[str, ACLPolicy] = {}
        self.acl_roles: dict[str, ACLRole] = {}
        self.acl_bootstrap: dict[str, ACLBootstrap] = {}
        self.virtual_ips: dict[str, VirtualIP] = {}
        self.virtual_ip_claims: dict[str, VirtualIPClaim] = {}
        """Address to the name holding it; the allocator's view of what is taken."""
        self.prepared_queries: dict[str, PreparedQuery] = {}
        self.connect_ca: dict[str, ConnectCA] = {}
        """The one ``state`` record once the CA is initialised."""
        self.intentions: dict[str, Intention] = {}
        """By ``<destination>/<source>``."""
        self._plain: dict[str, MutableMapping[str, Any]] = {
            "connect-ca": self.connect_ca,
            "intentions": self.intentions,
            "events": self.events,
            "coordinates": self.coordinates,
            "members": self.members,
            "acl-tokens": self.acl_tokens,
            "acl-policies": self.acl_policies,
            "acl-roles": self.acl_roles,
            "acl-bootstrap": self.acl_bootstrap,
            "virtual-ips": self.virtual_ips,
            "virtual-ip-claims": self.virtual_ip_claims,
            "prepared-queries": self.prepared_queries,
        }
        """Tables kept as a plain key -> record map, with nothing derived from them."""
        self.carried: dict[str, Carried] = {}
        """Store keys whose record shows carried indexes rather than the key's revisions:
        writers translate between the two (``State.write``), readers report the revision."""
        self.quarantined: dict[str, int] = {}
        """Store keys whose current record cannot be indexed, with its revision; they read as absent."""
        self._rejected: list[Rejected] = []

    # -- feeding -----------------------------------------------------------------------

    def apply(self, events: Iterable[Event], revision: int) -> set[Topic]:
        touched: set[Topic] = set()
        self.revision = max(self.revision, revision)
        for ev in events:
            key = ev.kv.key
            for table in schema.TABLES:
                if key.startswith(table.prefix):
                    self._apply_one(table, ev, touched)
                    break
        self.topics.touch(touched, revision)
        self.topics.flush()
        return touched

    def take_rejected(self) -> list[Rejected]:
        """Records quarantined since the last call, for the caller to report once."""
        rejected, self._rejected = self._rejected, []
        return rejected

    def _apply_one(self, table: schema.Table[Any], ev: Event, touched: set[Topic]) -> None:
        kv = ev.kv
        self.quarantined.pop(kv.key, None)
        if self.carried:
            self.carried.pop(kv.key, None)
        try:
            parts = self.sharing.parts(table.name, table.split(kv.key))
        except ValueError as exc:
            # No identity to index under, so nothing indexed can be stale: only report it.
            if ev.type is EventType.PUT:
                self._quarantine(kv.key, kv.mod_revision, str(exc))
            return
        rec = None
        if ev.type is EventType.PUT:
            try:
                rec = self.sharing.record(table.decode(kv.value, kv.create_revision, kv.mod_revision))
            except ValueError as exc:
                # Applied as a delete, so an older good version is not served as current.
                self._quarantine(kv.key, kv.mod_revision, str(exc))
            if rec is not None and kv.value[:1] == schema.CARRIED_MARK:
                created = getattr(rec, "CreateIndex", 0)
                if created:
                    self.carried[kv.key] = Carried(created, rec.ModifyIndex, kv.mod_revision)
        touched.add((table.name,))
        name = table.name
        if name == "nodes":
            self._node(parts[0], rec, touched)
        elif name == "services":
            self._service(parts[0], parts[1], rec, touched)
        elif name == "checks":
            self._check(parts[0], parts[1], rec, touched)
        elif name == "kvs":
            self._kv(parts[0], rec, kv.mod_revision)
        elif name == "sessions":
            self._session(parts[0], rec, kv.lease, touched)
        elif name in self._plain:
            plain = self._plain[name]
            if rec is None:
                plain.pop(parts[0], None)
            else:
                plain[parts[0]] = rec
        elif name == "liveness":
            if rec is None:
                self.live.discard(parts[0])
            else:
                self.live.add(parts[0])
            touched.add(("members",))
        elif name == "leader":
            self.leader = rec
        elif name == "graveyard":
            self._reap(rec)

    def quarantined_under(self, *prefixes: str) -> bool:
        """Whether a quarantined record lies under any of ``prefixes``: such a record reads
        as absent, but a delete of what holds it must still remove it from the store."""
        return any(key.startswith(prefixes) for key in self.quarantined)

    def _quarantine(self, key: str, revision: int, reason: str) -> None:
        self.quarantined[key] = revision
        self._rejected.append(Rejected(key, revision, reason))

    def _session(self, sid: str, rec: Session | None, lease: int, touched: set[Topic]) -> None:
        old = self.sessions.pop(sid, None)
        self.session_leases.pop(sid, None)
        if rec is not None:
            self.sessions[sid] = rec
            self.session_leases[sid] = lease
        elif old is not None and sid in self.kv_locks:
            # Expired through its lease: the leader still needs its Behavior to free its locks.
            self.dead_sessions[sid] = old
        node = rec.Node if rec is not None else old.Node if old is not None else ""
        touched.update({("session", sid), ("session-node", node)})

    def _kv(self, key: str, rec: KVEntry | None, revision: int) -> None:
        old = self.kv.pop(key, None)
        if old is not None and old.Session:
            held = self.kv_locks[old.Session]
            held.discard(key)
            if not held:
                del self.kv_locks[old.Session]
                self.dead_sessions.pop(old.Session, None)
        if rec is None:
            self.kv_tombstones[key] = revision
        else:
            self.kv[key] = rec
            self.kv_tombstones.pop(key, None)
            if rec.Session:
                self.kv_locks.setdefault(rec.Session, set()).add(key)
        self.topics.touch_kv(key, revision)

    def _reap(self, rec: Graveyard | None) -> None:
        """Drop the tombstones at or below the leader's reap index (a full scan, as Consul's
        graveyard does; reaps are rare and batched)."""
        self.graveyard = rec
        if rec is None or rec.ReapIndex <= self.kv_reaped_index:
            return
        tombstones = self.kv_tombstones
        for key in [k for k, index in tombstones.items() if index <= rec.ReapIndex]:
            del tombstones[key]
        self.kv_reaped_index = rec.ReapIndex

    def _node(self, node: str, rec: Node | None, touched: set[Topic]) -> None:
        if rec is None:
            self.nodes.pop(node, None)
        else:
            self.nodes[node] = rec
        touched.add(("node", node))
        self._touch_all(node, touched)

    def _touch_all(self, node: str, touched: set[Topic]) -> None:
        """Something every service on ``node`` shows changed (the node, a node-level check)."""
        for svc in self.services.get(node, {}).values():
            touched.update(_topics_of(svc))

    def _service(self, node: str, sid: str, rec: NodeService | None, touched: set[Topic]) -> None:
        on_node = self.services.setdefault(node, {})
        old = on_node.pop(sid, None)
        key = (node, sid)
        if old is not None:
            for topic in _topics_of(old):
                listed = self._listed[topic[0]]
                under = listed[topic[1]]
                under.pop(key, None)
                if not under:
                    del listed[topic[1]]
                touched.add(topic)
        if rec is not None:
            on_node[sid] = rec
            for topic in _topics_of(rec):
                self._listed[topic[0]].setdefault(topic[1], {})[key] = rec
                touched.add(topic)
        elif not on_node:
            del self.services[node]
        touched.add(("node", node))

    def _check(self, node: str, cid: str, rec: HealthCheck | None, touched: set[Topic]) -> None:
        on_node = self.checks.setdefault(node, {})
        old = on_node.pop(cid, None)
        for c in (old, rec):
            if c is None:
                continue
            if c.ServiceName:
                touched.add(("service", c.ServiceName))
                owner = self.services.get(node, {}).get(c.ServiceID)
                if owner is not None:
                    touched.update(_topics_of(owner))
            elif not c.ServiceID:
                self._touch_all(node, touched)
        if rec is not None:
            on_node[cid] = rec
        elif not on_node:
            del self.checks[node]
        touched.add(("node", node))

    # -- reading helpers used by several queries ---------------------------------------

    def table_index(self, table: str) -> int:
        return max(1, self.topics.index((table,)))

    def service_index(self, service: str, kind: str = "service") -> int:
        """Per-service index (Consul #3890), or with ``kind="connect"`` that of what takes
        its Connect traffic; the services table index when it never existed."""
        idx = self.topics.index((kind, service))
        return idx if idx else self.table_index("services")

    def checks_for(self, node: str, service_id: str) -> list[HealthCheck]:
        """Node-level checks first, then the service's, as Consul lists them."""
        on_node = self.checks.get(node)
        if not on_node:
            return []
        return [c for c in on_node.values() if c.ServiceID in ("", service_id)]

    def kv_prefix(self, prefix: str) -> list[KVEntry]:
        return [self.kv[k] for k in self.kv.irange(prefix, prefix + "\U0010ffff")]

    def kv_index(self, entry: KVEntry) -> int:
        """The index a read of ``entry`` reports: its ModifyIndex, or while it shows the
        indexes a restore carried in, the revision that wrote it, so that the index never
        goes backwards and a blocking query on it parks."""
        carried = self.carried.get(schema.KVS.prefix + entry.Key) if self.carried else None
        return entry.ModifyIndex if carried is None else carried.revision

    def kv_prefix_index(self, prefix: str) -> int:
        """Highest change under ``prefix``, tombstones included so deletes are seen.

        A reaped tombstone may have been the prefix's highest change, so once any are
        reaped the answer is at least the reap index: a blocking query's index must never
        go backwards (Consul falls back to the table index only for empty prefixes, and
        lets a non-empty prefix's index drop)."""
        entries = self.kv_prefix(prefix)
        if self.carried:
            best = max((self.kv_index(e) for e in entries), default=0)
        else:
            best = max((e.ModifyIndex for e in entries), default=0)
        tombstones = self.kv_tombstones
        for key in tombstones.irange(prefix, prefix + "\U0010ffff"):
            best = max(best, tombstones[key])
        return max(best, self.kv_reaped_index) if best else self.table_index("kvs")
