"""Consul's response shapes as data: for each read endpoint, the fields of its answer and
when each is present.

Consul encodes its Go structs with ``encoding/json``, so a field is either always present,
left out while empty (``omitempty``), or ``null`` while empty (a nil slice, map or pointer
without ``omitempty``); its HTTP handlers then patch a few nils into empty lists. Clients
decode by those rules (a ``null`` where a list was promised breaks some), so each shape
here is a msgspec Struct whose declaration *is* the rule, and encoding stays one msgspec
call on bytes the read cache keeps:

* a field is always present, and ``null`` when empty if it is typed ``X | None``;
* a field typed ``X | Omit`` is left out when empty (msgspec never encodes ``UNSET``).

``ENDPOINTS`` says which shape each read answers with and ``OTHER_READS`` covers the reads
whose answers are scalars or free-form; ``python -m waypost.api.shapes`` renders both as
``docs/api-fields.md``.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Union, get_args, get_origin

import msgspec

from waypost.state import model, queries

__all__ = [
    "ENDPOINTS",
    "OTHER_READS",
    "AgentCheck",
    "AgentService",
    "AgentServiceChecksInfo",
    "Answer",
    "CheckServiceNode",
    "Container",
    "DirEntry",
    "Endpoint",
    "Intention",
    "Member",
    "Node",
    "NodeService",
    "NodeServiceList",
    "NodeServices",
    "Omit",
    "Presence",
    "QueryExecution",
    "QueryExplain",
    "ServiceNode",
    "Session",
    "UnknownServiceHealth",
    "agent_check",
    "agent_service",
    "check_service_node",
    "intention",
    "nested",
    "node",
    "node_service",
    "presence",
    "proxy",
    "render",
    "service_node",
    "session",
]


Omit = msgspec.UnsetType
"""A field typed ``X | Omit`` is left out while empty: its builder passes ``UNSET``."""
UNSET = msgspec.UNSET


class Node(msgspec.Struct, gc=False):
    """Consul's ``structs.Node``. A node registered without tagged addresses or meta has
    nil maps, which Consul sends as ``null``."""

    ID: str
    Node: str
    Address: str
    Datacenter: str
    TaggedAddresses: dict[str, str] | None
    Meta: dict[str, str] | None
    CreateIndex: int
    ModifyIndex: int


class AgentUpstream(msgspec.Struct, frozen=True, gc=False):
    """``api.Upstream`` as the agent endpoints send it: type and datacenter left out while empty."""

    DestinationType: str | Omit
    DestinationNamespace: str | Omit
    DestinationPartition: str | Omit
    DestinationPeer: str | Omit
    DestinationName: str
    Datacenter: str | Omit
    LocalBindAddress: str | Omit
    LocalBindPort: int | Omit
    LocalBindSocketPath: str | Omit
    LocalBindSocketMode: str | Omit
    Config: dict[str, Any] | Omit
    MeshGateway: dict[str, Any]


class Upstream(AgentUpstream, frozen=True, gc=False):
    """Consul's ``structs.Upstream`` as the catalog sends it: the same fields in the same
    order (a redeclared field keeps its place), but type and datacenter always present."""

    DestinationType: str
    Datacenter: str


class ConnectProxyConfig(msgspec.Struct, frozen=True, gc=False):
    """Consul's ``structs.ConnectProxyConfig`` through its custom marshaller: of an unset
    one only ``Mode`` and the two nested structs, which ``omitempty`` cannot drop, remain."""

    DestinationServiceName: str | Omit = UNSET
    DestinationServiceID: str | Omit = UNSET
    LocalServiceAddress: str | Omit = UNSET
    LocalServicePort: int | Omit = UNSET
    LocalServiceSocketPath: str | Omit = UNSET
    Mode: str = ""
    Config: dict[str, Any] | Omit = UNSET
    Upstreams: list[Upstream] | Omit = UNSET
    MeshGateway: dict[str, Any] = msgspec.field(default_factory=dict)
    Expose: dict[str, Any] = msgspec.field(default_factory=dict)
    TransparentProxy: dict[str, Any] | Omit = UNSET
    AccessLogs: dict[str, Any] | Omit = UNSET


class AgentServiceConnectProxyConfig(msgspec.Struct, frozen=True, gc=False):
    """``api.AgentServiceConnectProxyConfig``: as the catalog's, but ``Mode`` is omitempty."""

    DestinationServiceName: str | Omit
    DestinationServiceID: str | Omit
    LocalServiceAddress: str | Omit
    LocalServicePort: int | Omit
    LocalServiceSocketPath: str | Omit
    Mode: str | Omit
    Config: dict[str, Any] | Omit
    Upstreams: list[AgentUpstream] | Omit
    MeshGateway: dict[str, Any]
    Expose: dict[str, Any]
    TransparentProxy: dict[str, Any] | Omit
    AccessLogs: dict[str, Any] | Omit


_NO_PROXY = ConnectProxyConfig()
_NOT_NATIVE: dict[str, Any] = {}
_NATIVE = {"Native": True}


class NodeService(msgspec.Struct, gc=False):
    """Consul's ``structs.NodeService``: a service as the catalog holds it (no Datacenter)."""

    Kind: str | Omit
    ID: str
    Service: str
    Tags: list[str]
    Address: str
    TaggedAddresses: dict[str, model.AddressPort] | Omit
    Meta: dict[str, str] | None
    Port: int | Omit
    Weights: model.Weights
    EnableTagOverride: bool
    Proxy: ConnectProxyConfig
    Connect: dict[str, Any]
    PeerName: str
    Locality: model.Locality | Omit
    CreateIndex: int
    ModifyIndex: int


class ServiceNode(msgspec.Struct, gc=False):
    """Consul's flattened ``structs.ServiceNode`` (``catalog/service``); ``ServiceLocality``
    is a pointer without ``omitempty``, so it is always there, ``null`` while unset."""

    ID: str
    Node: str
    Address: str
    Datacenter: str
    TaggedAddresses: dict[str, str] | None
    NodeMeta: dict[str, str] | None
    ServiceKind: str
    ServiceID: str
    ServiceName: str
    ServiceTags: list[str]
    ServiceAddress: str
    ServiceTaggedAddresses: dict[str, model.AddressPort] | Omit
    ServiceWeights: model.Weights
    ServiceMeta: dict[str, str] | None
    ServicePort: int
    ServiceSocketPath: str
    ServiceEnableTagOverride: bool
    ServiceProxy: ConnectProxyConfig
    ServiceConnect: dict[str, Any]
    ServiceLocality: model.Locality | None
    CreateIndex: int
    ModifyIndex: int


class CheckServiceNode(msgspec.Struct, gc=False):
    """Consul's ``structs.CheckServiceNode`` (``health/service``)."""

    Node: Node | model.Node
    Service: NodeService
    Checks: list[model.HealthCheck]


class QueryExecution(msgspec.Struct, gc=False):
    """Consul's ``PreparedQueryExecuteResponse``, its QueryMeta inlined as Go encodes it;
    a failed-over answer carries the other datacenter's rows as they came."""

    Service: str
    Nodes: list[CheckServiceNode] | list[msgspec.Raw]
    DNS: model.QueryDNS
    Datacenter: str
    PeerName: str
    Failovers: int
    Index: int
    LastContact: int
    KnownLeader: bool
    ConsistencyLevel: str
    NotModified: bool
    Backend: int
    ResultsFilteredByACLs: bool


class QueryExplain(msgspec.Struct, gc=False):
    """Consul's ``PreparedQueryExplainResponse``: the query as it would run (rendered)."""

    Query: model.PreparedQuery
    Index: int
    LastContact: int
    KnownLeader: bool
    ConsistencyLevel: str
    NotModified: bool
    Backend: int


class NodeServices(msgspec.Struct, gc=False):
    """``catalog/node``: the node's services by ID."""

    Node: Node | model.Node
    Services: dict[str, NodeService]


class NodeServiceList(msgspec.Struct, gc=False):
    """``catalog/node-services``: a nil slice for a node without services, and both fields
    ``null`` for an unknown node."""

    Node: Node | model.Node | None
    Services: list[NodeService] | None


class AgentService(msgspec.Struct, gc=False):
    """Consul's ``api.AgentService`` as the agent builds it: Tags and Meta are patched to
    empty rather than nil, the local record's zero indexes are left out, and ``Proxy`` is
    there only for a proxy or gateway, ``Connect`` only for a Connect-native service."""

    Kind: str | Omit
    ID: str
    Service: str
    Tags: list[str]
    Meta: dict[str, str]
    Port: int
    Address: str
    TaggedAddresses: dict[str, model.AddressPort] | Omit
    Weights: model.Weights
    EnableTagOverride: bool
    ContentHash: str | Omit
    Proxy: AgentServiceConnectProxyConfig | Omit
    Connect: dict[str, Any] | Omit
    Datacenter: str | Omit
    Locality: model.Locality | Omit


class AgentCheckDefinition(msgspec.Struct, frozen=True, gc=False):
    """``api.HealthCheckDefinition`` as the agent health endpoints send it: their checks are
    built field by field and never copy the definition, so it is always this."""

    Interval: str = "0s"
    Timeout: str = "0s"
    DeregisterCriticalServiceAfter: str = "0s"
    HTTP: str = ""
    Header: dict[str, list[str]] | None = None
    Method: str = ""
    Body: str = ""
    TLSServerName: str = ""
    TLSSkipVerify: bool = False
    TCP: str = ""
    TCPUseTLS: bool = False
    UDP: str = ""
    GRPC: str = ""
    OSService: str = ""
    GRPCUseTLS: bool = False


_NO_DEFINITION = AgentCheckDefinition()


class AgentCheck(msgspec.Struct, gc=False):
    """``api.HealthCheck`` in ``agent/health/service``: Consul copies only the identity,
    status and service fields from the local check, so Type is empty, the indexes zero and
    ServiceTags the local check's own (nil, so ``null``, for a service without tags)."""

    Node: str
    CheckID: str
    Name: str
    Status: str
    Notes: str
    Output: str
    ServiceID: str
    ServiceName: str
    ServiceTags: list[str] | None
    Type: str = ""
    ExposedPort: int = 0
    Definition: AgentCheckDefinition = _NO_DEFINITION
    CreateIndex: int = 0
    ModifyIndex: int = 0


class AgentServiceChecksInfo(msgspec.Struct, gc=False):
    """``agent/health/service/*``: a local service with its own and its node's checks."""

    AggregatedStatus: str
    Service: AgentService
    Checks: list[AgentCheck]


class UnknownServiceHealth(msgspec.Struct, frozen=True, gc=False):
    """The 404 of ``agent/health/service/id``: Consul's AgentServiceChecksInfo with both
    pointers nil."""

    AggregatedStatus: str = "critical"
    Service: None = None
    Checks: None = None


class Member(msgspec.Struct, kw_only=True, gc=False):
    """Serf's member as ``agent/members`` lists it."""

    Name: str
    Addr: str
    Port: int
    Tags: dict[str, str]
    Status: int
    ProtocolMin: int
    ProtocolMax: int
    ProtocolCur: int
    DelegateMin: int
    DelegateMax: int
    DelegateCur: int


class Intention(msgspec.Struct, gc=False):
    """Consul's ``structs.Intention``: the ID and times only on one made through the legacy
    create-by-ID API, Action and Meta left out while empty."""

    ID: str | Omit
    Description: str | Omit
    SourceNS: str
    SourceName: str
    DestinationNS: str
    DestinationName: str
    SourceType: str
    Action: str | Omit
    Meta: dict[str, str] | Omit
    Precedence: int
    CreatedAt: str | Omit
    UpdatedAt: str | Omit
    CreateIndex: int
    ModifyIndex: int


class DirEntry(msgspec.Struct, gc=False):
    """Consul's KV entry: Value is base64 or ``null``, Session only while locked."""

    LockIndex: int
    Key: str
    Flags: int
    Value: bytes | None
    Session: str | Omit
    CreateIndex: int
    ModifyIndex: int


class Session(msgspec.Struct, gc=False):
    """Consul's ``structs.Session``: ServiceChecks stays a nil slice unless some were given."""

    ID: str
    Name: str
    Node: str
    LockDelay: int
    Behavior: str
    TTL: str
    NodeChecks: list[str]
    ServiceChecks: list[dict[str, str]] | None
    CreateIndex: int
    ModifyIndex: int


# The builders below construct positionally, in field order: it is several times faster than
# keywords, and they run for every record each time a read's cached answer is rebuilt.


def node(n: model.Node) -> Node | model.Node:
    """The stored record itself when no map is empty: it then encodes the same, for free
    (an agent's own node, the common case, always has both)."""
    if n.TaggedAddresses and n.Meta:
        return n
    return Node(
        n.ID, n.Node, n.Address, n.Datacenter, n.TaggedAddresses or None, n.Meta or None, n.CreateIndex,
        n.ModifyIndex,
    )  # fmt: skip


def _upstream(u: model.Upstream) -> Upstream:
    return Upstream(
        u.DestinationType, u.DestinationNamespace or UNSET, u.DestinationPartition or UNSET,
        u.DestinationPeer or UNSET, u.DestinationName, u.Datacenter, u.LocalBindAddress or UNSET,
        u.LocalBindPort or UNSET, u.LocalBindSocketPath or UNSET, u.LocalBindSocketMode or UNSET,
        u.Config or UNSET, u.MeshGateway,
    )  # fmt: skip


def proxy(p: model.ConnectProxyConfig | None) -> ConnectProxyConfig:
    if p is None:
        return _NO_PROXY
    return ConnectProxyConfig(
        p.DestinationServiceName or UNSET, p.DestinationServiceID or UNSET, p.LocalServiceAddress or UNSET,
        p.LocalServicePort or UNSET, p.LocalServiceSocketPath or UNSET, p.Mode, p.Config or UNSET,
        [_upstream(u) for u in p.Upstreams] or UNSET, p.MeshGateway, p.Expose, p.TransparentProxy or UNSET,
        p.AccessLogs or UNSET,
    )  # fmt: skip


def _agent_upstream(u: model.Upstream) -> AgentUpstream:
    return AgentUpstream(
        u.DestinationType or UNSET, u.DestinationNamespace or UNSET, u.DestinationPartition or UNSET,
        u.DestinationPeer or UNSET, u.DestinationName, u.Datacenter or UNSET, u.LocalBindAddress or UNSET,
        u.LocalBindPort or UNSET, u.LocalBindSocketPath or UNSET, u.LocalBindSocketMode or UNSET,
        u.Config or UNSET, u.MeshGateway,
    )  # fmt: skip


def _agent_proxy(p: model.ConnectProxyConfig) -> AgentServiceConnectProxyConfig:
    upstreams = [_agent_upstream(u) for u in p.Upstreams]
    return AgentServiceConnectProxyConfig(
        p.DestinationServiceName or UNSET, p.DestinationServiceID or UNSET, p.LocalServiceAddress or UNSET,
        p.LocalServicePort or UNSET, p.LocalServiceSocketPath or UNSET, p.Mode or UNSET, p.Config or UNSET,
        upstreams or UNSET, p.MeshGateway, p.Expose, p.TransparentProxy or UNSET, p.AccessLogs or UNSET,
    )  # fmt: skip


def _connect(s: model.NodeService) -> dict[str, Any]:
    return _NATIVE if s.Connect is not None and s.Connect.Native else _NOT_NATIVE


def node_service(s: model.NodeService) -> NodeService:
    return NodeService(
        s.Kind or UNSET, s.ID, s.Service, s.Tags, s.Address, s.TaggedAddresses or UNSET, s.Meta or None,
        s.Port or UNSET, s.Weights, s.EnableTagOverride, proxy(s.Proxy), _connect(s), "", s.Locality or UNSET,
        s.CreateIndex, s.ModifyIndex,
    )  # fmt: skip


def service_node(inst: queries.ServiceInstance) -> ServiceNode:
    n, s = inst.node, inst.service
    return ServiceNode(
        n.ID, n.Node, n.Address, n.Datacenter, n.TaggedAddresses or None, n.Meta or None, s.Kind, s.ID,
        s.Service, s.Tags, s.Address, s.TaggedAddresses or UNSET, s.Weights, s.Meta or None, s.Port, "",
        s.EnableTagOverride, proxy(s.Proxy), _connect(s), s.Locality, s.CreateIndex, s.ModifyIndex,
    )  # fmt: skip


def check_service_node(inst: queries.ServiceInstance) -> CheckServiceNode:
    return CheckServiceNode(node(inst.node), node_service(inst.service), inst.checks)


def agent_service(s: model.NodeService) -> AgentService:
    shows_proxy = s.Kind == "connect-proxy" or s.Kind.endswith("-gateway")
    return AgentService(
        s.Kind or UNSET, s.ID, s.Service, s.Tags, s.Meta, s.Port, s.Address, s.TaggedAddresses or UNSET,
        s.Weights, s.EnableTagOverride, UNSET,
        _agent_proxy(s.Proxy or model.ConnectProxyConfig()) if shows_proxy else UNSET,
        _connect(s) or UNSET, s.Datacenter or UNSET, s.Locality or UNSET,
    )  # fmt: skip


def agent_check(c: model.HealthCheck) -> AgentCheck:
    return AgentCheck(
        c.Node, c.CheckID, c.Name, c.Status, c.Notes, c.Output, c.ServiceID, c.ServiceName,
        c.ServiceTags or None,
    )  # fmt: skip


def intention(x: model.Intention) -> Intention:
    return Intention(
        x.ID or UNSET, x.Description or UNSET, x.SourceNS, x.SourceName, x.DestinationNS, x.DestinationName,
        x.SourceType, x.Action or UNSET, x.Meta or UNSET, x.Precedence, x.CreatedAt or UNSET,
        x.UpdatedAt or UNSET, x.CreateIndex, x.ModifyIndex,
    )  # fmt: skip


def session(s: model.Session) -> Session:
    return Session(
        s.ID, s.Name, s.Node, s.LockDelay, s.Behavior, s.TTL, s.NodeChecks, s.ServiceChecks or None,
        s.CreateIndex, s.ModifyIndex,
    )  # fmt: skip


class Presence(StrEnum):
    ALWAYS = "always"
    OMITEMPTY = "omitted when empty"
    NULL = "null when empty"


def presence(shape: type[msgspec.Struct]) -> dict[str, Presence]:
    """Each field's rule, read off the Struct's declaration."""
    rules = {}
    for f in msgspec.structs.fields(shape):
        options = _options(f.type)
        if Omit in options:
            rules[f.encode_name] = Presence.OMITEMPTY
        elif type(None) in options:
            rules[f.encode_name] = Presence.NULL
        else:
            rules[f.encode_name] = Presence.ALWAYS
    return rules


def _options(tp: Any) -> tuple[Any, ...]:
    return get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,)


def nested(shape: type[msgspec.Struct]) -> dict[str, tuple[Container, type[msgspec.Struct]]]:
    """The fields that hold other shapes: one, a list of them, or a map to them."""
    out = {}
    for f in msgspec.structs.fields(shape):
        inner = _inner_struct(f.type)
        if inner is not None:
            out[f.encode_name] = inner
    return out


class Container(StrEnum):
    ONE = "one"
    LIST = "list"
    MAP = "map"


def _inner_struct(tp: Any) -> tuple[Container, type[msgspec.Struct]] | None:
    for option in _options(tp):
        if isinstance(option, type) and issubclass(option, msgspec.Struct):
            return Container.ONE, option
        origin, args = get_origin(option), get_args(option)
        inner = _inner_struct(args[-1]) if origin in (list, dict) else None
        if inner is not None:
            return Container.LIST if origin is list else Container.MAP, inner[1]
    return None


class Answer(StrEnum):
    LIST = "a list of"
    MAP = "an object of IDs to"
    OBJECT = "one"


@dataclass(frozen=True)
class Endpoint:
    """A read, the shape of its answer, and of its 404 when that has a JSON body."""

    path: str
    answer: Answer
    shape: type[msgspec.Struct]
    note: str = ""
    missing: type[msgspec.Struct] | None = None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/v1/agent/services", Answer.MAP, AgentService),
    Endpoint("/v1/agent/service/:id", Answer.OBJECT, AgentService, "with its ContentHash"),
    Endpoint("/v1/agent/checks", Answer.MAP, model.HealthCheck),
    Endpoint(
        "/v1/agent/health/service/id/:id", Answer.OBJECT, AgentServiceChecksInfo, missing=UnknownServiceHealth
    ),
    Endpoint("/v1/agent/health/service/name/:name", Answer.LIST, AgentServiceChecksInfo),
    Endpoint("/v1/agent/members", Answer.LIST, Member),
    Endpoint("/v1/catalog/nodes", Answer.LIST, Node),
    Endpoint("/v1/catalog/service/:name", Answer.LIST, ServiceNode),
    Endpoint("/v1/catalog/node/:node", Answer.OBJECT, NodeServices, "`null` for an unknown node"),
    Endpoint("/v1/catalog/node-services/:node", Answer.OBJECT, NodeServiceList),
    Endpoint("/v1/health/node/:node", Answer.LIST, model.HealthCheck),
    Endpoint("/v1/health/checks/:service", Answer.LIST, model.HealthCheck),
    Endpoint("/v1/health/state/:state", Answer.LIST, model.HealthCheck),
    Endpoint("/v1/health/service/:service", Answer.LIST, CheckServiceNode),
    Endpoint(
        "/v1/catalog/connect/:service", Answer.LIST, ServiceNode, "the service's proxies and native instances"
    ),
    Endpoint("/v1/health/connect/:service", Answer.LIST, CheckServiceNode, "as /v1/catalog/connect"),
    Endpoint(
        "/v1/health/ingress/:service", Answer.LIST, CheckServiceNode, "empty: no ingress config entries"
    ),
    Endpoint("/v1/connect/intentions", Answer.LIST, Intention, "in evaluation order"),
    Endpoint("/v1/connect/intentions/exact", Answer.OBJECT, Intention, "404 with no JSON body when absent"),
    Endpoint("/v1/connect/intentions/:id", Answer.OBJECT, Intention, "404 with no JSON body when absent"),
    Endpoint("/v1/kv/:key", Answer.LIST, DirEntry, "404 with no body when nothing matches"),
    Endpoint("/v1/session/info/:id", Answer.LIST, Session),
    Endpoint("/v1/session/node/:node", Answer.LIST, Session),
    Endpoint("/v1/session/list", Answer.LIST, Session),
    Endpoint("/v1/query", Answer.LIST, model.PreparedQuery),
    Endpoint(
        "/v1/query/:id",
        Answer.LIST,
        model.PreparedQuery,
        "one; `/execute`: Consul's PreparedQueryExecuteResponse, `/explain`: {Query}, each with QueryMeta",
    ),
    Endpoint("/v1/event/list", Answer.LIST, model.UserEvent),
    Endpoint("/v1/coordinate/nodes", Answer.LIST, model.Coordinate),
    Endpoint("/v1/coordinate/node/:node", Answer.LIST, model.Coordinate),
)

OTHER_READS: dict[str, str] = {
    "/": "a redirect to the UI, or Consul's plain-text greeting",
    "/ui/:path": "the web UI's files (at `ui_config.content_path`)",
    "/v1/internal/ui/services": (
        "Consul's ServiceListingSummary list: Name, Datacenter, Tags and ExternalSources (`null` when"
        " none), Nodes, InstanceCount, ChecksPassing/Warning/Critical (a proxy's also its"
        " destination's), ConnectNative, ConnectedWithProxy, TransparentProxy; ConnectedWithGateway"
        " false, GatewayConfig empty"
    ),
    "/v1/internal/ui/nodes": "Consul's NodeInfo list: the node's fields with its Services and Checks",
    "/v1/internal/ui/node/:node": "one NodeInfo; 404 with no body for an unknown node",
    "/v1/agent/self": "free-form: Config, DebugConfig, Coord, Member, Stats, Meta, xDS",
    "/v1/agent/host": "free-form host facts",
    "/v1/agent/metrics": "go-metrics JSON, or Prometheus text",
    "/v1/agent/monitor": "a text stream",
    "/v1/stream/health/service/:name": (
        "waypost's own: server-sent events of CheckServiceNode, as in /v1/health/service (docs/streaming.md)"
    ),
    "/v1/stream/catalog/services": (
        "waypost's own: server-sent events of /v1/catalog/services entries (docs/streaming.md)"
    ),
    "/v1/stream/kv/:prefix": "waypost's own: server-sent events of KV entries (docs/streaming.md)",
    "/v1/catalog/datacenters": "a list of names",
    "/v1/catalog/services": "an object of service names to tag lists (`[]`, never `null`)",
    "/v1/status/leader": "a string",
    "/v1/status/peers": "a list of addresses",
    "/v1/snapshot": "a binary archive",
    "/v1/operator/raft/configuration": (
        "Servers (RaftServer: ID, Node, Address, Leader, ProtocolVersion, Voter, LastIndex) and Index"
    ),
    "/v1/operator/autopilot/health": "Healthy, FailureTolerance and Servers (ServerHealth, all always)",
    "/v1/operator/autopilot/configuration": "Consul's AutopilotConfiguration, every field always",
    "/v1/coordinate/datacenters": "a list of areas with their servers' coordinates",
    "/v1/acl/replication": "Consul's ACLReplicationStatus, as its primary datacenter answers",
    "/v1/internal/wan/exchange": "waypost's own: Self and Servers, the WAN pool as this server sees it",
    "/v1/internal/acl/replicate": (
        "waypost's own: Policies, Roles and the global Tokens (secrets included), as a secondary copies them"
    ),
    "/v1/acl/token/self": "Consul's ACLToken (empty lists and ExpirationTime left out)",
    "/v1/acl/tokens": "a list of Consul's ACLTokenListStub",
    "/v1/acl/policy/name/:name": "Consul's ACLPolicy",
    "/v1/acl/policies": "a list of Consul's ACLPolicyListStub (no Rules)",
    "/v1/acl/role/name/:name": "Consul's ACLRole",
    "/v1/acl/roles": "a list of Consul's ACLRole",
    "/v1/agent/connect/ca/roots": (
        "Consul's IndexedCARoots: ActiveRootID, TrustDomain, Roots (CARoot without key material)"
    ),
    "/v1/agent/connect/ca/leaf/:service": "Consul's IssuedCert, PrivateKeyPEM included",
    "/v1/connect/ca/roots": "as /v1/agent/connect/ca/roots; `?pem=true`: the certificates as PEM",
    "/v1/connect/intentions/match": "an object of each name asked for to its Intention list, best first",
    "/v1/connect/intentions/check": "Allowed, a bool",
    "/v1/catalog/gateway-services/:gateway": "a list of Consul's GatewayService: empty (no config entries)",
    "/v1/discovery-chain/:service": "Chain: Consul's CompiledDiscoveryChain, the default one (one resolver)",
    "/v1/connect/ca/configuration": "Consul's CAConfiguration: Provider, Config, State, CreateIndex...",
    "/v1/waypost/virtual-ips": "waypost's own: a list of VirtualIP (Name, IP, Filter and the indexes)",
    "/v1/waypost/virtual-ip/:name": "waypost's own: one VirtualIP, or null while the name has no address",
    "/v1/waypost/virtual-ip-instances/:name": "waypost's own: a name's instances, as /v1/health/service",
}
"""Reads whose answers are scalars, streams or free-form state rather than Consul records."""


_SCALARS = {str: "string", int: "number", float: "number", bool: "bool", bytes: "base64", type(None): "null"}


def _type_name(tp: Any) -> str:
    options = [o for o in _options(tp) if o not in (type(None), Omit)]
    if not options:
        return "null"
    if len(options) > 1:
        return " or ".join(dict.fromkeys(_type_name(o) for o in options))
    tp = options[0]
    origin, args = get_origin(tp), get_args(tp)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[1])}"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return _SCALARS.get(tp, "any")


def _shapes() -> Iterator[type[msgspec.Struct]]:
    """Every shape the endpoints use, each once, in the order they first appear."""
    seen: list[type[msgspec.Struct]] = []
    pending = [shape for e in ENDPOINTS for shape in (e.shape, e.missing) if shape is not None]
    while pending:
        shape = pending.pop(0)
        if shape in seen:
            continue
        seen.append(shape)
        yield shape
        pending[:0] = [s for s in _field_structs(shape) if s not in seen]


def _field_structs(shape: type[msgspec.Struct]) -> list[type[msgspec.Struct]]:
    return list(dict.fromkeys(inner for _, inner in nested(shape).values()))


def render(lines: Callable[[str], None]) -> None:
    """The field reference, as Markdown."""
    lines("# API fields")
    lines("")
    lines("<!-- Generated by `python3 -m waypost.api.shapes`; edit src/waypost/api/shapes.py instead. -->")
    lines("")
    lines("Which fields each read answers with, and when each is there, as Consul 1.21's JSON has them:")
    lines("*always*, *omitted when empty* (Go's `omitempty`), or *null when empty* (a nil Go slice, map or")
    lines("pointer without `omitempty`). Fields of Consul's types that only Enterprise, peering, mesh")
    lines("proxies or locality fill in are always omitted here and not listed.")
    lines("")
    lines("## Endpoints")
    lines("")
    lines("| Endpoint | Answer | Note |")
    lines("| --- | --- | --- |")
    for e in ENDPOINTS:
        note = f"404: one {_type_name(e.missing)}" if e.missing else e.note
        lines(f"| `GET {e.path}` | {e.answer.value} {_type_name(e.shape)} | {note} |")
    for path, what in OTHER_READS.items():
        lines(f"| `GET {path}` | {what} | |")
    for shape in _shapes():
        lines("")
        lines(f"## {shape.__name__}")
        lines("")
        lines("| Field | Present | Type |")
        lines("| --- | --- | --- |")
        types_ = {f.encode_name: f.type for f in msgspec.structs.fields(shape)}
        for name, rule in presence(shape).items():
            lines(f"| {name} | {rule.value} | {_type_name(types_[name])} |")


if __name__ == "__main__":
    render(print)
