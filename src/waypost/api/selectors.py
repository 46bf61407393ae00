"""The top-level selectors ``?filter`` accepts on each result type.

bexpr checks every selector against the Go struct an endpoint filters, so a name the type
lacks is refused before any data is read (``Selector "Foo" is not valid``). These are
those structs' field names: the ones waypost returns, plus the ones only features it
lacks fill in (Enterprise namespaces and partitions, peering, mesh proxies), which are
valid to name and simply match nothing here.
"""

from __future__ import annotations

from waypost.state.model import HealthCheck, Node, NodeService

__all__ = [
    "AGENT_SERVICE",
    "CHECK_SERVICE_NODE",
    "HEALTH_CHECK",
    "MEMBER",
    "NODE",
    "NODE_SERVICE",
    "SERVICE_NODE",
]

_TENANCY = frozenset({"Namespace", "Partition", "PeerName"})

NODE = frozenset(Node.__struct_fields__) | _TENANCY | {"Locality"}
"""``catalog/nodes``: Consul's Node."""

NODE_SERVICE = (
    frozenset(NodeService.__struct_fields__)
    | _TENANCY
    | {"SocketPath", "Proxy", "Connect", "Locality", "LocallyRegisteredAsSidecar"}
)
"""``catalog/node`` and ``catalog/node-services``: the node's NodeService records."""

AGENT_SERVICE = NODE_SERVICE | {"ContentHash"}
"""``agent/services``: Consul's AgentService."""

HEALTH_CHECK = frozenset(HealthCheck.__struct_fields__) | _TENANCY
"""``health/node``, ``health/checks``, ``health/state`` and ``agent/checks``."""

SERVICE_NODE = _TENANCY | {
    "ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta", "ServiceKind", "ServiceID",
    "ServiceName", "ServiceTags", "ServiceAddress", "ServiceTaggedAddresses", "ServiceWeights", "ServiceMeta",
    "ServicePort", "ServiceSocketPath", "ServiceEnableTagOverride", "ServiceProxy", "ServiceConnect",
    "ServiceLocality", "CreateIndex", "ModifyIndex",
}  # fmt: skip
"""``catalog/service`` and ``catalog/services``: Consul's flattened ServiceNode."""

CHECK_SERVICE_NODE = frozenset({"Node", "Service", "Checks"})
"""``health/service``: a node, one of its services, and the checks that apply to it."""

MEMBER = frozenset({
    "Name", "Addr", "Port", "Tags", "Status", "ProtocolMin", "ProtocolMax", "ProtocolCur", "DelegateMin",
    "DelegateMax", "DelegateCur",
})  # fmt: skip
"""``agent/members``: Serf's Member."""
