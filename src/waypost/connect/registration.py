"""A registration's ``Connect.SidecarService`` expanded into a service of its own, with the
defaults Consul's agent gives it (``agent/sidecar_service.go``).

The sidecar is registration sugar: the parent keeps no trace of it, and the agent registers
``<id>-sidecar-proxy``, a ``connect-proxy`` in front of the parent, on the lowest free port
of the configured range, with a TCP check on that port and an alias of the parent's health
unless the block names checks of its own. Everything here is computed from its arguments,
so the agent can refuse a bad sidecar before it has changed anything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from waypost.agent.definitions import DefinitionError, ServiceDefinition, parse_service, value_of
from waypost.state.model import NodeService

__all__ = ["SIDECAR_SUFFIX", "sidecar_definition", "sidecar_id", "sidecar_port"]

SIDECAR_SUFFIX = "-sidecar-proxy"


def sidecar_id(service_id: str) -> str:
    return service_id + SIDECAR_SUFFIX


def sidecar_port(sid: str, ports: tuple[int, int], local: Iterable[NodeService]) -> int:
    """The sidecar's port: the one it already holds in the range (a re-registration keeps
    it), else the lowest that no local service uses; Consul's messages when there is none."""
    low, high = ports
    if low < 1 or high < 1:
        raise DefinitionError("no port provided for sidecar_service and auto-assignment disabled in config")
    used = set()
    for svc in local:
        if low <= svc.Port <= high:
            if sid == svc.ID:
                return svc.Port
            used.add(svc.Port)
    free = next((p for p in range(low, high + 1) if p not in used), None)
    if free is None:
        raise DefinitionError(
            f"no port provided for sidecar_service and none left in the configured range [{low}, {high}]"
        )
    return free


def _spelled(key: Any, field: str) -> bool:
    return str(key).replace("_", "").replace("-", "").lower() == field.lower()


def _put(body: dict[str, Any], field: str, value: Any) -> None:
    """``field`` set to ``value``, replacing it under whatever spelling the body gave it."""
    for key in [k for k in body if _spelled(k, field)]:
        del body[key]
    body[field] = value


def _set_default(body: dict[str, Any], field: str, value: Any) -> None:
    if not value_of(body, field):
        _put(body, field, value)


def _host_port(address: str, port: int) -> str:
    try:
        is_v6 = ipaddress.ip_address(address).version == 6
    except ValueError:
        is_v6 = False
    return f"[{address}]:{port}" if is_v6 else f"{address}:{port}"


def sidecar_definition(
    parent: NodeService,
    body: dict[str, Any],
    *,
    datacenter: str,
    ports: tuple[int, int],
    local: Iterable[NodeService],
) -> ServiceDefinition:
    """The sidecar's definition; a DefinitionError prefixed as Consul's agent prefixes it."""
    sid = sidecar_id(parent.ID)
    out = dict(body)
    proxy = value_of(out, "Proxy") or {}
    if not isinstance(proxy, dict):
        raise DefinitionError("Invalid SidecarService: Proxy must be a JSON object")
    proxy = dict(proxy)
    _set_default(out, "Kind", "connect-proxy")
    _set_default(out, "Name", value_of(out, "Service") or parent.Service + SIDECAR_SUFFIX)
    _set_default(out, "Address", parent.Address)
    _set_default(out, "Tags", list(parent.Tags))
    _set_default(out, "Meta", dict(parent.Meta))
    _set_default(proxy, "DestinationServiceName", parent.Service)
    _set_default(proxy, "DestinationServiceID", parent.ID)
    if not value_of(proxy, "LocalServiceSocketPath"):
        _set_default(proxy, "LocalServiceAddress", "127.0.0.1")
        _set_default(proxy, "LocalServicePort", parent.Port)
    _put(out, "Proxy", proxy)
    _put(out, "Service", None)
    _put(out, "ID", sid)
    try:
        port = value_of(out, "Port") or sidecar_port(sid, ports, local)
        _set_default(out, "Port", port)
        if not value_of(out, "Check") and not value_of(out, "Checks"):
            address = value_of(out, "Address") or value_of(proxy, "LocalServiceAddress") or ""
            out["Checks"] = [
                {"Name": "Connect Sidecar Listening", "TCP": _host_port(address, port), "Interval": "10s"},
                {"Name": f"Connect Sidecar Aliasing {parent.ID}", "AliasService": parent.ID},
            ]
        return parse_service(out, datacenter)
    except DefinitionError as exc:
        raise DefinitionError(f"Invalid SidecarService: {exc}") from None
