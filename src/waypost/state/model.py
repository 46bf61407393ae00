"""Catalog records, spelled exactly as Consul's JSON spells them.

Records are ``gc=False``: they hold only strings, numbers and containers of those, never
cycles, and keeping 100,000 of them out of the collector's reach removes its long pauses.

Field names are Consul's PascalCase on purpose: the records are encoded straight to the
wire with msgspec, so a name here *is* the API. ``CreateIndex``/``ModifyIndex`` are not
stored in the store value; they come from the store's create/mod revisions when a
record is loaded, which is what makes them cluster-wide and monotonic.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

__all__ = [
    "ACLBootstrap",
    "ACLLink",
    "ACLNodeIdentity",
    "ACLPolicy",
    "ACLRole",
    "ACLServiceIdentity",
    "ACLToken",
    "AddressPort",
    "CARoot",
    "CheckStatus",
    "ConnectCA",
    "ConnectProxyConfig",
    "Coordinate",
    "Graveyard",
    "HealthCheck",
    "Intention",
    "KVEntry",
    "Leader",
    "Liveness",
    "Locality",
    "Member",
    "Node",
    "NodeService",
    "PreparedQuery",
    "QueryDNS",
    "QueryFailover",
    "QueryFailoverTarget",
    "QueryTemplate",
    "ServiceConnect",
    "ServiceQuery",
    "Session",
    "Upstream",
    "UserEvent",
    "VirtualIP",
    "VirtualIPClaim",
    "Weights",
    "connect_target",
    "worst_status",
]


class CheckStatus(StrEnum):
    PASSING = "passing"
    WARNING = "warning"
    CRITICAL = "critical"
    MAINTENANCE = "maintenance"


_SEVERITY = {"passing": 0, "warning": 1, "critical": 2, "maintenance": 3}


def worst_status(statuses: list[str]) -> str:
    """Aggregate as Consul does: maintenance > critical > warning > passing."""
    worst = "passing"
    for s in statuses:
        if _SEVERITY.get(s, 2) > _SEVERITY[worst]:
            worst = s
    return worst


class AddressPort(msgspec.Struct, omit_defaults=False, gc=False):
    Address: str = ""
    Port: int = 0


class Weights(msgspec.Struct, gc=False):
    Passing: int = 1
    Warning: int = 1


class Node(msgspec.Struct, kw_only=True, gc=False):
    ID: str = ""
    Node: str
    Address: str = ""
    Datacenter: str = "dc1"
    TaggedAddresses: dict[str, str] = msgspec.field(default_factory=dict)
    Meta: dict[str, str] = msgspec.field(default_factory=dict)
    CreateIndex: int = 0
    ModifyIndex: int = 0


class Upstream(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """A proxy's upstream, as Consul's ``structs.Upstream`` (``DestinationType`` defaults
    to ``service`` at registration)."""

    DestinationType: str = ""
    DestinationNamespace: str = ""
    DestinationPartition: str = ""
    DestinationPeer: str = ""
    DestinationName: str = ""
    Datacenter: str = ""
    LocalBindAddress: str = ""
    LocalBindPort: int = 0
    LocalBindSocketPath: str = ""
    LocalBindSocketMode: str = ""
    Config: dict[str, Any] = msgspec.field(default_factory=dict)
    MeshGateway: dict[str, Any] = msgspec.field(default_factory=dict)
    CentrallyConfigured: bool = False


class ConnectProxyConfig(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Consul's ``structs.ConnectProxyConfig``: what a proxy or gateway fronts and how.
    The nested blocks Consul passes through to the proxy are kept as given."""

    DestinationServiceName: str = ""
    DestinationServiceID: str = ""
    LocalServiceAddress: str = ""
    LocalServicePort: int = 0
    LocalServiceSocketPath: str = ""
    Mode: str = ""
    Config: dict[str, Any] = msgspec.field(default_factory=dict)
    Upstreams: list[Upstream] = msgspec.field(default_factory=list)
    MeshGateway: dict[str, Any] = msgspec.field(default_factory=dict)
    Expose: dict[str, Any] = msgspec.field(default_factory=dict)
    TransparentProxy: dict[str, Any] = msgspec.field(default_factory=dict)
    AccessLogs: dict[str, Any] = msgspec.field(default_factory=dict)


class ServiceConnect(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """What is kept of a registration's ``Connect`` block: its ``SidecarService`` is only
    registration sugar, expanded into a service of its own and never stored (as Consul)."""

    Native: bool = False


class Locality(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    Region: str = ""
    Zone: str = ""


class NodeService(msgspec.Struct, kw_only=True, gc=False):
    ID: str
    Service: str
    Tags: list[str] = msgspec.field(default_factory=list)
    Address: str = ""
    TaggedAddresses: dict[str, AddressPort] = msgspec.field(default_factory=dict)
    Meta: dict[str, str] = msgspec.field(default_factory=dict)
    Port: int = 0
    Weights: Weights = msgspec.field(default_factory=Weights)
    EnableTagOverride: bool = False
    Kind: str = ""
    Proxy: ConnectProxyConfig | None = None
    Connect: ServiceConnect | None = None
    Locality: Locality | None = None
    Datacenter: str = "dc1"
    CreateIndex: int = 0
    ModifyIndex: int = 0


def connect_target(svc: NodeService) -> str:
    """The service ``svc`` takes Connect traffic for, or "": a proxy's destination, or a
    Connect-native instance's own service (the records Consul's ``connect`` index holds)."""
    if svc.Kind == "connect-proxy":
        return svc.Proxy.DestinationServiceName if svc.Proxy is not None else ""
    if svc.Kind == "" and svc.Connect is not None and svc.Connect.Native:
        return svc.Service
    return ""


class HealthCheck(msgspec.Struct, kw_only=True, gc=False):
    Node: str
    CheckID: str
    Name: str
    Status: str = "critical"
    Notes: str = ""
    Output: str = ""
    ServiceID: str = ""
    ServiceName: str = ""
    ServiceTags: list[str] = msgspec.field(default_factory=list)
    Type: str = ""
    Interval: str = ""
    Timeout: str = ""
    ExposedPort: int = 0
    Definition: dict[str, Any] = msgspec.field(default_factory=dict)
    CreateIndex: int = 0
    ModifyIndex: int = 0


class KVEntry(msgspec.Struct, kw_only=True, gc=False):
    """``Value`` holds raw bytes; the API layer base64-encodes it (``null`` when empty)."""

    Key: str
    Flags: int = 0
    Value: bytes = b""
    LockIndex: int = 0
    Session: str = ""
    CreateIndex: int = 0
    ModifyIndex: int = 0


class Intention(msgspec.Struct, kw_only=True, gc=False):
    """An L4 intention, keyed by its source and destination (Consul 1.9+ keeps them in the
    destination's ``service-intentions`` entry). ``ID`` and the times are set only for one
    made through the legacy create-by-ID API, as Consul sets them."""

    ID: str = ""
    Description: str = ""
    SourceNS: str = "default"
    SourceName: str
    DestinationNS: str = "default"
    DestinationName: str
    SourceType: str = "consul"
    Action: str
    Meta: dict[str, str] = msgspec.field(default_factory=dict)
    Precedence: int = 0
    CreatedAt: str = ""
    UpdatedAt: str = ""
    CreateIndex: int = 0
    ModifyIndex: int = 0


class Session(msgspec.Struct, kw_only=True, gc=False):
    ID: str
    Name: str = ""
    Node: str = ""
    LockDelay: int = 15_000_000_000  # nanoseconds, as Consul's JSON
    Behavior: str = "release"
    TTL: str = ""
    NodeChecks: list[str] = msgspec.field(default_factory=list)
    ServiceChecks: list[dict[str, str]] = msgspec.field(default_factory=list)
    CreateIndex: int = 0
    ModifyIndex: int = 0


class QueryFailoverTarget(msgspec.Struct, kw_only=True, gc=False):
    Peer: str = ""
    Datacenter: str = ""


class QueryFailover(msgspec.Struct, kw_only=True, gc=False):
    NearestN: int = 0
    Datacenters: list[str] | None = None
    Targets: list[QueryFailoverTarget] | None = None


class ServiceQuery(msgspec.Struct, kw_only=True, gc=False):
    """A prepared query's service lookup; in a template every string in it is interpolated."""

    Service: str = ""
    SamenessGroup: str = ""
    Failover: QueryFailover = msgspec.field(default_factory=QueryFailover)
    OnlyPassing: bool = False
    IgnoreCheckIDs: list[str] | None = None
    Near: str = ""
    Tags: list[str] | None = None
    NodeMeta: dict[str, str] | None = None
    ServiceMeta: dict[str, str] | None = None
    Connect: bool = False
    Peer: str = ""


class QueryTemplate(msgspec.Struct, kw_only=True, gc=False):
    Type: str = ""
    Regexp: str = ""
    RemoveEmptyTags: bool = False


class QueryDNS(msgspec.Struct, kw_only=True, gc=False):
    TTL: str = ""


class PreparedQuery(msgspec.Struct, kw_only=True, gc=False):
    """A stored prepared query (Consul's ``structs.PreparedQuery``); one tied to a
    ``Session`` is stored on that session's lease, so it dies with the session."""

    ID: str
    Name: str = ""
    Session: str = ""
    Token: str = ""
    Template: QueryTemplate = msgspec.field(default_factory=QueryTemplate)
    Service: ServiceQuery = msgspec.field(default_factory=ServiceQuery)
    DNS: QueryDNS = msgspec.field(default_factory=QueryDNS)
    CreateIndex: int = 0
    ModifyIndex: int = 0


class UserEvent(msgspec.Struct, kw_only=True, gc=False):
    ID: str
    Name: str
    Payload: bytes | None = None
    NodeFilter: str = ""
    ServiceFilter: str = ""
    TagFilter: str = ""
    Version: int = 1
    LTime: int = 0


class Member(msgspec.Struct, kw_only=True, gc=False):
    """An agent that joined the cluster (Consul's Serf member, kept in the store instead)."""

    Name: str
    Addr: str
    Port: int = 8301
    Tags: dict[str, str] = msgspec.field(default_factory=dict)
    Server: bool = False
    Left: bool = False
    HTTPAddr: str = ""
    HTTPSAddr: str = ""
    """``host:port`` of the HTTPS API, empty without one: how the other servers pass a server
    on over the WAN when it serves HTTPS only (port 0 in ``HTTPAddr``) or names are verified."""


class Liveness(msgspec.Struct, kw_only=True, gc=False):
    """Present while the agent keeps its store lease alive; its absence means failed."""

    Node: str


class Leader(msgspec.Struct, kw_only=True, gc=False):
    Name: str
    Addr: str


class Graveyard(msgspec.Struct, kw_only=True, gc=False):
    """How far the leader has reaped KV tombstones (Consul's tombstone ``reap`` request).

    Kept in the store so that every agent reaps the same tombstones at the same revision,
    as every Consul server applies the reap through Raft."""

    ReapIndex: int
    CreateIndex: int = 0
    ModifyIndex: int = 0


class Coordinate(msgspec.Struct, kw_only=True, gc=False):
    Node: str
    Segment: str = ""
    Coord: dict[str, Any] = msgspec.field(default_factory=dict)


class VirtualIP(msgspec.Struct, kw_only=True, gc=False):
    """A name's stable virtual IP, kept in the store so that every agent answers the same.

    ``Filter`` is empty for a catalog service, whose instances are the service's own; a
    declared virtual service selects its instances with a filter expression over each
    instance's ``Service``, ``Tags`` and ``Meta``, like a Kubernetes selector."""

    Name: str
    IP: str
    Filter: str = ""
    CreateIndex: int = 0
    ModifyIndex: int = 0


class VirtualIPClaim(msgspec.Struct, kw_only=True, gc=False):
    """Which name holds an address. One key per address is what makes two concurrent
    allocations of the same address collide in the store, so one of them fails."""

    Name: str


class ACLLink(msgspec.Struct, gc=False):
    """A token's or role's reference to a policy or role; the name is refreshed on read."""

    ID: str = ""
    Name: str = ""


class ACLServiceIdentity(msgspec.Struct, omit_defaults=True, gc=False):
    ServiceName: str
    Datacenters: list[str] = msgspec.field(default_factory=list)


class ACLNodeIdentity(msgspec.Struct, gc=False):
    NodeName: str
    Datacenter: str


class ACLPolicy(msgspec.Struct, kw_only=True, gc=False):
    ID: str
    Name: str
    Description: str = ""
    Rules: str = ""
    Datacenters: list[str] | None = None
    Hash: bytes = b""
    CreateIndex: int = 0
    ModifyIndex: int = 0


class ACLRole(msgspec.Struct, kw_only=True, gc=False):
    ID: str
    Name: str
    Description: str = ""
    Policies: list[ACLLink] | None = None
    ServiceIdentities: list[ACLServiceIdentity] | None = None
    NodeIdentities: list[ACLNodeIdentity] | None = None
    Hash: bytes = b""
    CreateIndex: int = 0
    ModifyIndex: int = 0


class ACLToken(msgspec.Struct, kw_only=True, gc=False):
    """``ExpirationTime`` is RFC 3339 text, empty for a token that never expires."""

    AccessorID: str
    SecretID: str
    Description: str = ""
    Policies: list[ACLLink] | None = None
    Roles: list[ACLLink] | None = None
    ServiceIdentities: list[ACLServiceIdentity] | None = None
    NodeIdentities: list[ACLNodeIdentity] | None = None
    Local: bool = False
    ExpirationTime: str = ""
    CreateTime: str = ""
    Hash: bytes = b""
    CreateIndex: int = 0
    ModifyIndex: int = 0


class ACLBootstrap(msgspec.Struct, kw_only=True, gc=False):
    """That the cluster was bootstrapped; deleting it (a reset) allows one more bootstrap."""

    AllowBootstrap: bool = False
    CreateIndex: int = 0
    ModifyIndex: int = 0


class CARoot(msgspec.Struct, kw_only=True, gc=False):
    """One trusted Connect root, as Consul's ``structs.CARoot``; times are RFC 3339 text.

    ``SigningKey`` (PEM) is the built-in provider's key, kept with its root as Consul keeps
    it in Raft so that every server signs with the same one. ``AddedIndex`` is the index
    of the write that added the root (0 until a later write fills it in)."""

    ID: str
    Name: str
    SerialNumber: int
    SigningKeyID: str
    ExternalTrustDomain: str = ""
    NotBefore: str
    NotAfter: str
    RootCert: str
    IntermediateCerts: list[str] = msgspec.field(default_factory=list)
    SigningKey: str = ""
    Active: bool = False
    RotatedOutAt: str = ""
    PrivateKeyType: str = "ec"
    PrivateKeyBits: int = 256
    AddedIndex: int = 0


class ConnectCA(msgspec.Struct, kw_only=True, gc=False):
    """The cluster's CA: its configuration and roots in one record, so a rotation (a new
    active root, the old one kept) is one guarded write that every server sees at once."""

    ClusterID: str
    Provider: str = "consul"
    Config: dict[str, Any] = msgspec.field(default_factory=dict)
    Roots: list[CARoot] = msgspec.field(default_factory=list)
    NextSerial: int = 1
    CreateIndex: int = 0
    ModifyIndex: int = 0
