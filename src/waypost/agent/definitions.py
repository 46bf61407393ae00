"""Service definitions as Consul accepts them: API bodies and config-file blocks alike.

Consul decodes case-insensitively (Go's JSON) and also translates snake_case, so
``service_id``, ``serviceid`` and ``ServiceID`` are one field; both the HTTP API and
config files go through ``canonical_keys``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from waypost.state.model import (
    AddressPort,
    ConnectProxyConfig,
    Locality,
    NodeService,
    ServiceConnect,
    Upstream,
    Weights,
)

__all__ = [
    "GATEWAYS",
    "KINDS",
    "DefinitionError",
    "ServiceDefinition",
    "canonical_keys",
    "parse_meta",
    "parse_service",
    "service_problems",
    "typed",
    "validation_failed",
    "value_of",
]


class DefinitionError(ValueError):
    """Bad input in a definition; the message names the field."""


def _canon(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def canonical_keys(
    body: Any, fields: Iterable[str], *, what: str, ignored: Iterable[str] = ()
) -> dict[str, Any]:
    """``body`` with its keys spelled as ``fields`` spells them; unknown keys are an error
    naming the key, known-but-unsupported ones (``ignored``) are dropped."""
    if not isinstance(body, dict):
        raise DefinitionError(f"{what} must be a JSON object")
    table = {_canon(f): f for f in fields}
    skip = {_canon(f) for f in ignored}
    out: dict[str, Any] = {}
    for key, value in body.items():
        canon = _canon(str(key))
        name = table.get(canon)
        if name is not None:
            out[name] = value
        elif canon not in skip:
            raise DefinitionError(f'{what}: unknown field "{key}"')
    return out


_SERVICE_FIELDS = (
    "ID", "Name", "Service", "Tags", "Address", "TaggedAddresses", "Meta", "Port", "Kind", "Check", "Checks",
    "EnableTagOverride", "Weights", "Proxy", "Connect", "Locality",
)  # fmt: skip
_SERVICE_IGNORED = (
    "Namespace", "Partition", "SocketPath", "Token", "PeerName", "Datacenter", "EnterpriseMeta",
    "CreateIndex", "ModifyIndex", "ContentHash", "LocallyRegisteredAsSidecar",
)  # fmt: skip


@dataclass(frozen=True)
class ServiceDefinition:
    service: NodeService
    checks: list[dict[str, Any]]
    """Check bodies as given; the agent parses them with the check definition parser."""
    sidecar: dict[str, Any] | None = None
    """``Connect.SidecarService`` as given: the agent registers it as a service of its own."""


_SERVICE = "Invalid service definition"


def typed(value: Any, typ: Any, field: str, what: str = _SERVICE) -> Any:
    """``value`` as ``typ`` (what the store keeps), or a DefinitionError naming the field."""
    try:
        return msgspec.convert(value, typ, strict=False)
    except msgspec.ValidationError as exc:
        raise DefinitionError(f"{what}: {field}: {exc}") from None


_CONSUL_OWN_META = frozenset(("consul-network-segment", "consul-network-area", "consul-version"))
"""Reserved keys that agents themselves write into node metadata, so they round-trip."""


def parse_meta(value: Any, field: str, what: str = _SERVICE) -> dict[str, str]:
    """Node or service metadata, with Consul's limits (``structs.ValidateMetadata``)."""
    meta: dict[str, str] = typed(value or {}, dict[str, str], field, what)
    if len(meta) > 64:
        raise DefinitionError(f"{what}: {field}: Node metadata cannot contain more than 64 key/value pairs")
    for k, v in meta.items():
        if not k or len(k) > 128 or not all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in k):
            raise DefinitionError(f"{what}: {field}: Key contains invalid characters: {k!r}")
        if len(v) > 512:
            raise DefinitionError(f"{what}: {field}: Value is too long (limit: 512 characters)")
        if k.startswith("consul-") and k not in _CONSUL_OWN_META:
            raise DefinitionError(f"{what}: {field}: Key prefix 'consul-' is reserved for internal use")
    return meta


def _tagged(value: Any) -> dict[str, AddressPort]:
    if not isinstance(value, dict):
        raise DefinitionError("Invalid service definition: TaggedAddresses must be an object")
    out = {}
    for name, addr in value.items():
        fields = canonical_keys(addr, ("Address", "Port"), what=f"TaggedAddresses.{name}")
        out[str(name)] = typed(fields, AddressPort, f"TaggedAddresses.{name}")
    return out


def _with_address_tags(tagged: dict[str, AddressPort], address: str, port: int) -> dict[str, AddressPort]:
    """Consul's agent tags a service registered at an IP address with that address as its
    LAN and WAN address of the IP's version (``lan_ipv4``, ``wan_ipv4`` or the ``ipv6``
    pair), keeping any the registration names itself."""
    try:
        ip = ipaddress.ip_address(address) if "%" not in address else None
    except ValueError:
        ip = None
    if ip is None:
        return tagged
    version = "ipv4" if ip.version == 4 or getattr(ip, "ipv4_mapped", None) else "ipv6"
    here = AddressPort(address, port)
    return dict(sorted(({f"lan_{version}": here, f"wan_{version}": here} | tagged).items()))


_PROXY_FIELDS = (
    "DestinationServiceName", "DestinationServiceID", "LocalServiceAddress", "LocalServicePort",
    "LocalServiceSocketPath", "Mode", "Config", "Upstreams", "MeshGateway", "Expose", "TransparentProxy",
    "AccessLogs",
)  # fmt: skip
_UPSTREAM_FIELDS = (
    "DestinationType", "DestinationNamespace", "DestinationPartition", "DestinationPeer", "DestinationName",
    "Datacenter", "LocalBindAddress", "LocalBindPort", "LocalBindSocketPath", "LocalBindSocketMode", "Config",
    "MeshGateway", "CentrallyConfigured",
)  # fmt: skip
_PASSED_THROUGH = ("Config", "MeshGateway", "Expose", "TransparentProxy", "AccessLogs")
"""Blocks Consul hands to the proxy as they are: kept as given, only required to be objects."""


def _struct(value: Any, fields: tuple[str, ...], typ: Any, field: str) -> Any:
    """A nested block with Consul's key spellings, typed, each error naming ``field``."""
    given = canonical_keys(value, fields, what=f"{_SERVICE}: {field}")
    for name in _PASSED_THROUGH:
        if given.get(name) is None:
            given.pop(name, None)
    return typed({k: v for k, v in given.items() if v is not None}, typ, field)


def _proxy(value: Any) -> ConnectProxyConfig:
    if not isinstance(value, dict):
        raise DefinitionError(f"{_SERVICE}: Proxy must be a JSON object")
    upstreams = value_of(value, "Upstreams") or []
    if not isinstance(upstreams, list):
        raise DefinitionError(f"{_SERVICE}: Proxy.Upstreams must be a list")
    parsed = [
        _struct(u, _UPSTREAM_FIELDS, Upstream, f"Proxy.Upstreams[{i}]") for i, u in enumerate(upstreams)
    ]
    rest = {k: v for k, v in value.items() if _canon(str(k)) != "upstreams"}
    proxy: ConnectProxyConfig = _struct(rest, _PROXY_FIELDS, ConnectProxyConfig, "Proxy")
    for u in parsed:
        u.DestinationType = u.DestinationType or "service"
    proxy.Upstreams = parsed
    return proxy


def value_of(body: dict[str, Any], field: str) -> Any:
    """``body``'s value for ``field`` under any of Consul's spellings of it."""
    return next((v for k, v in body.items() if _canon(str(k)) == _canon(field)), None)


def _connect(value: Any) -> tuple[ServiceConnect | None, dict[str, Any] | None]:
    fields = canonical_keys(value, ("Native", "SidecarService", "PeerMeta"), what=f"{_SERVICE}: Connect")
    native = typed(fields.get("Native") or False, bool, "Connect.Native")
    sidecar = fields.get("SidecarService")
    if sidecar is not None and not isinstance(sidecar, dict):
        raise DefinitionError(f"{_SERVICE}: Connect.SidecarService must be a JSON object")
    return (ServiceConnect(Native=True) if native else None), sidecar


def parse_service(body: Any, datacenter: str = "dc1", *, catalog: bool = False) -> ServiceDefinition:
    """``catalog``: a ``/v1/catalog/register`` service, stored as given; Consul checks
    ``Weights`` only when an agent registers its own service (its Go client always sends
    zero weights to the catalog)."""
    fields = canonical_keys(
        body, _SERVICE_FIELDS, what="Invalid service definition", ignored=_SERVICE_IGNORED
    )
    name = fields.get("Name") or fields.get("Service")
    if not isinstance(name, str) or not name:
        raise DefinitionError("Missing service name")
    sid = fields.get("ID") or name
    if not isinstance(sid, str):
        raise DefinitionError("Invalid service definition: ID must be a string")
    weights = Weights()
    if fields.get("Weights") is not None:
        w = canonical_keys(fields["Weights"], ("Passing", "Warning"), what="Weights")
        weights = typed(w, Weights, "Weights")
        if weights.Passing < 1 and not catalog:
            raise DefinitionError("Passing must be greater than 0")
    port = typed(fields.get("Port") or 0, int, "Port")
    if not 0 <= port <= 65535:
        raise DefinitionError(f"Invalid service definition: Port: {port} is not a valid port")
    address = typed(fields.get("Address") or "", str, "Address")
    tagged = _tagged(fields["TaggedAddresses"]) if fields.get("TaggedAddresses") else {}
    service = NodeService(
        ID=sid,
        Service=name,
        Tags=typed(fields.get("Tags") or [], list[str], "Tags"),
        Address=address,
        TaggedAddresses=tagged if catalog else _with_address_tags(tagged, address, port),
        Meta=parse_meta(fields.get("Meta"), "Meta"),
        Port=port,
        Weights=weights,
        EnableTagOverride=typed(fields.get("EnableTagOverride") or False, bool, "EnableTagOverride"),
        Kind=typed(fields.get("Kind") or "", str, "Kind"),
        Proxy=_proxy(fields["Proxy"]) if fields.get("Proxy") else None,
        Locality=_struct(fields["Locality"], ("Region", "Zone"), Locality, "Locality")
        if fields.get("Locality")
        else None,
        Datacenter=datacenter,
    )
    service.Connect, sidecar = _connect(fields["Connect"]) if fields.get("Connect") else (None, None)
    problems = service_problems(service, sidecar)
    if problems:
        raise DefinitionError(validation_failed(problems))
    checks: list[dict[str, Any]] = []
    if fields.get("Check"):
        checks.append(fields["Check"])
    extra = fields.get("Checks") or []
    if not isinstance(extra, list):
        raise DefinitionError("Invalid service definition: Checks must be a list")
    checks.extend(extra)
    for c in checks:
        if not isinstance(c, dict):
            raise DefinitionError("Invalid service definition: a check must be an object")
    return ServiceDefinition(service, checks, sidecar)


def validation_failed(problems: list[str]) -> str:
    """Consul's answer to an invalid NodeService: its go-multierror text."""
    count = "1 error occurred" if len(problems) == 1 else f"{len(problems)} errors occurred"
    listed = "".join(f"\n\t* {p}" for p in problems)
    return f"Validation failed: {count}:{listed}\n\n"


KINDS = ("", "connect-proxy", "mesh-gateway", "terminating-gateway", "ingress-gateway", "api-gateway")
GATEWAYS = frozenset(KINDS[2:])
_PROXY_MODES = ("", "direct", "transparent")


def service_problems(svc: NodeService, sidecar: dict[str, Any] | None) -> list[str]:
    """Consul's ``NodeService.Validate`` for what a registration's Kind, Proxy and Connect
    blocks must agree on, each problem in Consul's words."""
    out: list[str] = []
    proxy = svc.Proxy or ConnectProxyConfig()
    native = svc.Connect is not None and svc.Connect.Native
    if svc.Kind not in KINDS:
        out.append(f'Kind: unknown service kind "{svc.Kind}"; expected one of {", ".join(KINDS[1:])}')
    if proxy.Mode not in _PROXY_MODES:
        out.append(f"Proxy.Mode: invalid proxy mode: {proxy.Mode}")
    if svc.Kind == "connect-proxy":
        if not proxy.DestinationServiceName.strip():
            out.append("Proxy.DestinationServiceName must be non-empty for Connect proxy services")
        if proxy.DestinationServiceName == "*":
            out.append("Proxy.DestinationServiceName must not be a wildcard for Connect proxy services")
        if svc.Port == 0:
            out.append("Port or SocketPath must be set for a connect-proxy")
        if native:
            out.append("A Proxy cannot also be Connect Native, only typical services")
        if not 0 <= proxy.LocalServicePort <= 65535:
            out.append(f"invalid LocalServicePort: {proxy.LocalServicePort}")
        out += _upstream_problems(proxy.Upstreams)
    if svc.Kind in GATEWAYS:
        if svc.Port == 0 and svc.Kind != "ingress-gateway":
            out.append(f"Port must be non-zero for a {svc.Kind}")
        if sidecar is not None:
            out.append(f"A {svc.Kind} cannot have a sidecar service")
        if native:
            out.append(f"A {svc.Kind} cannot have Connect.Native set")
        for name in (
            "DestinationServiceName",
            "DestinationServiceID",
            "LocalServiceAddress",
            "LocalServicePort",
        ):
            if getattr(proxy, name):
                out.append(f"The Proxy.{name} configuration is invalid for a {svc.Kind}")
        if proxy.Upstreams:
            out.append(f"The Proxy.Upstreams configuration is invalid for a {svc.Kind}")
    if sidecar is not None:
        if value_of(sidecar, "ID"):
            out.append("A SidecarService cannot specify an ID as this is managed by the agent")
        nested = value_of(sidecar, "Connect")
        if isinstance(nested, dict) and value_of(nested, "SidecarService") is not None:
            out.append("A SidecarService cannot have a nested SidecarService")
    return out


def _upstream_problems(upstreams: list[Upstream]) -> list[str]:
    out = []
    seen: set[str] = set()
    for u in upstreams:
        if u.DestinationType not in ("service", "prepared_query"):
            out.append(f'unknown upstream destination type: "{u.DestinationType}"')
        elif not u.DestinationName:
            out.append("upstream destination name cannot be empty")
        elif u.DestinationName == "*" and not u.CentrallyConfigured:
            out.append("upstream destination name cannot be a wildcard")
        elif u.LocalBindPort == 0 and not u.LocalBindSocketPath and not u.CentrallyConfigured:
            out.append("upstream local bind port or local socket path must be defined and nonzero")
        elif not 0 <= u.LocalBindPort <= 65535:
            out.append(f"upstream local bind port {u.LocalBindPort} is not a valid port")
        else:
            addr = u.LocalBindSocketPath or f"{u.LocalBindAddress or '127.0.0.1'}:{u.LocalBindPort}"
            if addr in seen:
                out.append(
                    "upstreams cannot contain duplicates by local bind address and port or unix path; "
                    f'"{addr}" is specified twice'
                )
            seen.add(addr)
    return out
