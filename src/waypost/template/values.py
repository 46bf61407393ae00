"""The values consul-template's functions hand to templates, with its Go field names.

Templates written for consul-template read ``.Address``, ``.NodeMeta.rack`` or
``.Tags.Contains "x"``; these classes keep those names, field order (which ``toJSON`` and
``%v`` expose) and Go types (which error messages name), built from the agent's JSON.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from waypost.template.gofmt import StringMap

__all__ = [
    "CatalogNode",
    "CatalogNodeService",
    "CatalogSnippet",
    "HealthCheck",
    "HealthService",
    "KeyPair",
    "Node",
    "ServiceAddress",
    "ServiceTags",
    "Weights",
    "aggregated_status",
]


class ServiceTags(list[str]):
    """consul-template's ``ServiceTags``: sorted, with a ``Contains`` method."""

    GO_TYPE = "dependency.ServiceTags"


def _tags(raw: Any) -> ServiceTags:
    return ServiceTags(sorted(str(t) for t in raw or ()))


def _smap(raw: Any) -> StringMap:
    """A ``map[string]string`` from the agent's JSON; ``null`` stays a nil map."""
    return StringMap({str(k): str(v) for k, v in (raw or {}).items()}, nil=raw is None)


@dataclass(slots=True)
class ServiceAddress:
    GO_TYPE: ClassVar[str] = "api.ServiceAddress"
    Address: str = ""
    Port: int = 0


class AddressMap(dict[str, ServiceAddress]):
    """``map[string]api.ServiceAddress``; ``nil`` marks the nil map (JSON ``null``)."""

    GO_TYPE = "map[string]api.ServiceAddress"

    def __init__(self, *args: Any, nil: bool = False) -> None:
        super().__init__(*args)
        self.nil = nil


@dataclass(slots=True)
class Weights:
    GO_TYPE: ClassVar[str] = "api.AgentWeights"
    Passing: int = 1
    Warning: int = 1


@dataclass(slots=True)
class HealthCheck:
    GO_TYPE: ClassVar[str] = "*api.HealthCheck"
    Node: str = ""
    CheckID: str = ""
    Name: str = ""
    Status: str = ""
    Notes: str = ""
    Output: str = ""
    ServiceID: str = ""
    ServiceName: str = ""
    ServiceTags: list[str] = field(default_factory=list)
    Type: str = ""

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> HealthCheck:
        return cls(
            str(raw.get("Node", "")),
            str(raw.get("CheckID", "")),
            str(raw.get("Name", "")),
            str(raw.get("Status", "")),
            str(raw.get("Notes", "")),
            str(raw.get("Output", "")),
            str(raw.get("ServiceID", "")),
            str(raw.get("ServiceName", "")),
            list(raw.get("ServiceTags") or []),
            str(raw.get("Type", "")),
        )


def aggregated_status(checks: list[HealthCheck]) -> str:
    """``api.HealthChecks.AggregatedStatus``: maintenance beats critical beats warning."""
    warning = critical = maintenance = False
    for check in checks:
        if check.CheckID == "_node_maintenance" or check.CheckID.startswith("_service_maintenance:"):
            maintenance = True
            continue
        if check.Status == "passing":
            continue
        if check.Status == "warning":
            warning = True
        elif check.Status == "critical":
            critical = True
        else:
            return ""
    if maintenance:
        return "maintenance"
    if critical:
        return "critical"
    if warning:
        return "warning"
    return "passing"


@dataclass(slots=True)
class HealthService:
    GO_TYPE: ClassVar[str] = "*dependency.HealthService"
    Node: str = ""
    NodeID: str = ""
    NodeAddress: str = ""
    NodeTaggedAddresses: StringMap = field(default_factory=StringMap)
    NodeMeta: StringMap = field(default_factory=StringMap)
    ServiceMeta: StringMap = field(default_factory=StringMap)
    Address: str = ""
    ServiceTaggedAddresses: AddressMap = field(default_factory=AddressMap)
    ID: str = ""
    Name: str = ""
    Tags: ServiceTags = field(default_factory=ServiceTags)
    Checks: list[HealthCheck] = field(default_factory=list)
    Status: str = ""
    Port: int = 0
    Weights: Weights = field(default_factory=Weights)

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> HealthService:
        node = entry.get("Node") or {}
        svc = entry.get("Service") or {}
        checks = [HealthCheck.from_api(c) for c in entry.get("Checks") or []]
        weights = svc.get("Weights") or {}
        raw_tagged = svc.get("TaggedAddresses")
        tagged = AddressMap(
            {
                str(k): ServiceAddress(str(v.get("Address", "")), int(v.get("Port", 0)))
                for k, v in (raw_tagged or {}).items()
            },
            nil=raw_tagged is None,
        )
        return cls(
            Node=str(node.get("Node", "")),
            NodeID=str(node.get("ID", "")),
            NodeAddress=str(node.get("Address", "")),
            NodeTaggedAddresses=_smap(node.get("TaggedAddresses")),
            NodeMeta=_smap(node.get("Meta")),
            ServiceMeta=_smap(svc.get("Meta")),
            Address=str(svc.get("Address") or node.get("Address", "")),
            ServiceTaggedAddresses=tagged,
            ID=str(svc.get("ID", "")),
            Name=str(svc.get("Service", "")),
            Tags=_tags(svc.get("Tags")),
            Checks=checks,
            Status=aggregated_status(checks),
            Port=int(svc.get("Port", 0)),
            Weights=Weights(int(weights.get("Passing", 1)), int(weights.get("Warning", 1))),
        )


@dataclass(slots=True)
class CatalogSnippet:
    GO_TYPE: ClassVar[str] = "*dependency.CatalogSnippet"
    Name: str = ""
    Tags: ServiceTags = field(default_factory=ServiceTags)


@dataclass(slots=True)
class KeyPair:
    GO_TYPE: ClassVar[str] = "*dependency.KeyPair"
    Path: str = ""
    Key: str = ""
    Value: str = ""
    CreateIndex: int = 0
    ModifyIndex: int = 0
    LockIndex: int = 0
    Flags: int = 0
    Session: str = ""

    @classmethod
    def from_api(cls, raw: dict[str, Any], prefix: str) -> KeyPair:
        path = str(raw.get("Key", ""))
        key = path[len(prefix) :] if path.startswith(prefix) else path
        return cls(
            Path=path,
            Key=key.lstrip("/"),
            Value=decode_value(raw.get("Value")),
            CreateIndex=int(raw.get("CreateIndex", 0)),
            ModifyIndex=int(raw.get("ModifyIndex", 0)),
            LockIndex=int(raw.get("LockIndex", 0)),
            Flags=int(raw.get("Flags", 0)),
            Session=str(raw.get("Session") or ""),
        )


def decode_value(raw: Any) -> str:
    """A KV value as the template sees it: its bytes as a (UTF-8, lossy) string."""
    if not raw:
        return ""
    return base64.b64decode(raw).decode("utf-8", errors="replace")


@dataclass(slots=True)
class Node:
    GO_TYPE: ClassVar[str] = "*dependency.Node"
    ID: str = ""
    Node: str = ""
    Address: str = ""
    Datacenter: str = ""
    TaggedAddresses: StringMap = field(default_factory=StringMap)
    Meta: StringMap = field(default_factory=StringMap)

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> Self:
        return cls(
            str(raw.get("ID", "")),
            str(raw.get("Node", "")),
            str(raw.get("Address", "")),
            str(raw.get("Datacenter", "")),
            _smap(raw.get("TaggedAddresses")),
            _smap(raw.get("Meta")),
        )


NodeInfo = Node


@dataclass(slots=True)
class CatalogNodeService:
    GO_TYPE: ClassVar[str] = "*dependency.CatalogNodeService"
    ID: str = ""
    Service: str = ""
    Tags: ServiceTags = field(default_factory=ServiceTags)
    Meta: StringMap = field(default_factory=StringMap)
    Port: int = 0
    Address: str = ""
    EnableTagOverride: bool = False


@dataclass(slots=True)
class CatalogNode:
    GO_TYPE: ClassVar[str] = "*dependency.CatalogNode"
    Node: NodeInfo | None = None
    Services: list[CatalogNodeService] = field(default_factory=list)

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> CatalogNode:
        services = [
            CatalogNodeService(
                str(s.get("ID", "")),
                str(s.get("Service", "")),
                _tags(s.get("Tags")),
                _smap(s.get("Meta")),
                int(s.get("Port", 0)),
                str(s.get("Address", "")),
                bool(s.get("EnableTagOverride", False)),
            )
            for s in (raw.get("Services") or {}).values()
        ]
        services.sort(key=lambda s: s.Service)
        return cls(Node.from_api(raw.get("Node") or {}), services)
