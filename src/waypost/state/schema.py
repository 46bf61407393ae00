"""Every table the catalog keeps in the store, with its key layout and codec, in one place.

Each record is one store key, so a record's CreateIndex/ModifyIndex are the key's
create/mod revisions, unless its value carries its own (``carry``): a snapshot restore
writes records that keep the indexes they were saved with, as Consul's restore does, and
store revisions cannot be chosen. Node-scoped tables are keyed ``<prefix><node>/<id>`` so a
node and everything on it can be listed or deleted with one prefix operation.
Values are msgpack: compact, and an order of magnitude cheaper to decode than JSON.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

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
    Liveness,
    Member,
    Node,
    NodeService,
    PreparedQuery,
    Session,
    UserEvent,
    VirtualIP,
    VirtualIPClaim,
)

__all__ = [
    "ACL_BOOTSTRAP",
    "ACL_BOOTSTRAP_KEY",
    "ACL_POLICIES",
    "ACL_ROLES",
    "ACL_TOKENS",
    "CARRIED_MARK",
    "CHECKS",
    "CONNECT_CA",
    "CONNECT_CA_KEY",
    "COORDINATES",
    "EVENTS",
    "GRAVEYARD",
    "GRAVEYARD_KEY",
    "INTENTIONS",
    "KVS",
    "LEADER",
    "LEADER_KEY",
    "LIVENESS",
    "MEMBERS",
    "NODES",
    "PREPARED_QUERIES",
    "SERVICES",
    "SESSIONS",
    "TABLES",
    "VIRTUAL_IPS",
    "VIRTUAL_IP_CLAIMS",
    "InvalidRecordError",
    "Table",
    "carried",
    "carry",
]

T = TypeVar("T", bound=msgspec.Struct)


@dataclass(frozen=True)
class Table(Generic[T]):
    """A record type and where it lives; ``name`` doubles as the table's watch topic."""

    name: str
    prefix: str
    record: type[T]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_decoder", msgspec.msgpack.Decoder(self.record))

    def key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def split(self, key: str) -> list[str]:
        """The id parts of a store key (``[node, id]`` for node-scoped tables).

        Raises ``ValueError`` for a key of the wrong shape: keys are not only written by
        this version's write path (older versions, bugs, hand edits), and a key with a
        missing part would otherwise index a record under an empty name."""
        rest = key[len(self.prefix) :]
        node_scoped = self.name in _NODE_SCOPED
        parts = rest.split("/", 1) if node_scoped else [rest]
        if len(parts) != (2 if node_scoped else 1) or not all(parts):
            raise ValueError(f"malformed {self.name} key")
        if rest != _SINGLETONS.get(self.name, rest):
            raise ValueError(f"{self.name} has the one key {self.prefix}{_SINGLETONS[self.name]}")
        return parts

    def decode(self, value: bytes, create: int, modify: int) -> T:
        """Raises ``msgspec.DecodeError`` (a ``ValueError``) for a value that is not this
        table's record, including one a hand edit stored as text rather than bytes.
        Indexes the value carries win over the key's revisions."""
        value, carried_create, carried_modify = carried(value)
        create, modify = carried_create or create, carried_modify or modify
        try:
            rec: T = self._decoder.decode(value)  # type: ignore[attr-defined]
        except TypeError as exc:
            raise msgspec.DecodeError(str(exc)) from None
        if hasattr(rec, "CreateIndex") and hasattr(rec, "ModifyIndex"):
            rec.CreateIndex = create
            rec.ModifyIndex = modify
        return rec


_ENCODER = msgspec.msgpack.Encoder()
_NODE_SCOPED = {"services", "checks"}
_SINGLETONS = {"leader": "current", "graveyard": "kvs", "acl-bootstrap": "state", "connect-ca": "state"}
"""Tables with one fixed key, so that a stray key beside it cannot overwrite the record."""


class InvalidRecordError(ValueError):
    """A record that its readers could not decode; raised before anything is written."""


_CHECKERS: dict[type[msgspec.Struct], msgspec.msgpack.Decoder[Any]] = {}

_CARRIED = struct.Struct(">BQQ")
_MARK = 0xC1
CARRIED_MARK = bytes([_MARK])
"""The one byte msgpack never uses, so no encoded record starts with it: a value starting
with it carries (CreateIndex, ModifyIndex) before the record."""


def carry(value: bytes, create: int, modify: int = 0) -> bytes:
    """``value`` (an encoded record) holding its own CreateIndex and, unless 0, ModifyIndex,
    which readers then show instead of the key's revisions. A record that keeps a restored
    CreateIndex is written with ``modify`` 0, so each write shows its own revision."""
    record, _, _ = carried(value)
    return _CARRIED.pack(_MARK, create, modify) + record


def carried(value: bytes) -> tuple[bytes, int, int]:
    """The encoded record in ``value`` and the (CreateIndex, ModifyIndex) it carries, 0 for
    none. A marked value too short to carry them is left whole, for the decoder to refuse."""
    if len(value) < _CARRIED.size or value[0] != _MARK:
        return value, 0, 0
    _, create, modify = _CARRIED.unpack_from(value)
    return value[_CARRIED.size :], create, modify


def encode(record: msgspec.Struct) -> bytes:
    """Index fields are zeroed before encoding so that an unchanged record encodes to the
    same bytes as the stored one, which is how writers detect a no-op and skip it.

    Every write goes through here, so this is where a record is proven readable: the bytes
    are decoded back with the record's own type (a microsecond for a catalog record). A
    struct built with a wrong-typed field (msgspec does not check on construction) would
    otherwise be stored and stop every reader of the store at that revision.
    """
    if hasattr(record, "CreateIndex"):
        record = msgspec.structs.replace(record, CreateIndex=0, ModifyIndex=0)
    kind = type(record)
    checker = _CHECKERS.get(kind)
    if checker is None:
        checker = _CHECKERS[kind] = msgspec.msgpack.Decoder(kind)
    try:
        value = _ENCODER.encode(record)
        checker.decode(value)
    except (OverflowError, TypeError, msgspec.ValidationError) as exc:
        raise InvalidRecordError(f"Invalid {kind.__name__}: {exc}") from None
    return value


NODES: Table[Node] = Table("nodes", "catalog/nodes/", Node)
SERVICES: Table[NodeService] = Table("services", "catalog/services/", NodeService)
CHECKS: Table[HealthCheck] = Table("checks", "catalog/checks/", HealthCheck)
KVS: Table[KVEntry] = Table("kvs", "kv/", KVEntry)
SESSIONS: Table[Session] = Table("sessions", "sessions/", Session)
EVENTS: Table[UserEvent] = Table("events", "events/", UserEvent)
COORDINATES: Table[Coordinate] = Table("coordinates", "coordinates/", Coordinate)

MEMBERS: Table[Member] = Table("members", "system/members/", Member)
LIVENESS: Table[Liveness] = Table("liveness", "system/liveness/", Liveness)
LEADER: Table[Leader] = Table("leader", "system/leader/", Leader)
LEADER_KEY = LEADER.key("current")
GRAVEYARD: Table[Graveyard] = Table("graveyard", "system/graveyard/", Graveyard)
GRAVEYARD_KEY = GRAVEYARD.key("kvs")
ACL_TOKENS: Table[ACLToken] = Table("acl-tokens", "acl/tokens/", ACLToken)
ACL_POLICIES: Table[ACLPolicy] = Table("acl-policies", "acl/policies/", ACLPolicy)
ACL_ROLES: Table[ACLRole] = Table("acl-roles", "acl/roles/", ACLRole)
ACL_BOOTSTRAP: Table[ACLBootstrap] = Table("acl-bootstrap", "acl/bootstrap/", ACLBootstrap)
ACL_BOOTSTRAP_KEY = ACL_BOOTSTRAP.key("state")
CONNECT_CA: Table[ConnectCA] = Table("connect-ca", "connect/ca/", ConnectCA)
CONNECT_CA_KEY = CONNECT_CA.key("state")
INTENTIONS: Table[Intention] = Table("intentions", "connect/intentions/", Intention)
"""Keyed ``<destination>/<source>``: a destination's intentions list under one prefix."""
VIRTUAL_IPS: Table[VirtualIP] = Table("virtual-ips", "system/virtual-ips/", VirtualIP)
VIRTUAL_IP_CLAIMS: Table[VirtualIPClaim] = Table(
    "virtual-ip-claims", "system/virtual-ip-claims/", VirtualIPClaim
)
PREPARED_QUERIES: Table[PreparedQuery] = Table("prepared-queries", "queries/", PreparedQuery)

TABLES: tuple[Table[Any], ...] = (
    NODES, SERVICES, CHECKS, KVS, SESSIONS, EVENTS, COORDINATES, MEMBERS, LIVENESS, LEADER, GRAVEYARD,
    VIRTUAL_IPS, VIRTUAL_IP_CLAIMS, PREPARED_QUERIES,
    ACL_TOKENS, ACL_POLICIES, ACL_ROLES, ACL_BOOTSTRAP,
    CONNECT_CA, INTENTIONS,
)  # fmt: skip
