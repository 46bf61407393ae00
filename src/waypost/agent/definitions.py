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

from waypost.state.model import AddressPort, NodeService, Weights

__all__ = ["DefinitionError", "ServiceDefinition", "canonical_keys", "parse_meta", "parse_service", "typed"]


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
    "EnableTagOverride", "Weights",
)  # fmt: skip
_SERVICE_IGNORED = (
    "Connect", "Proxy", "Namespace", "Partition", "SocketPath", "Locality", "Token", "PeerName", "Datacenter",
    "EnterpriseMeta", "CreateIndex", "ModifyIndex", "ContentHash",
)  # fmt: skip


@dataclass(frozen=True)
class ServiceDefinition:
    service: NodeService
    checks: list[dict[str, Any]]
    """Check bodies as given; the agent parses them with the check definition parser."""


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
        Datacenter=datacenter,
    )
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
    return ServiceDefinition(service, checks)
