"""From one container's inspect JSON to the services it should have in the catalog.

Pure: no engine, no agent, no clock, so every rule Registrator applies (and every fix
to it) is a table test. The rules follow Registrator's bridge: one service per
published port, named from the image, ``SERVICE_*`` env and labels (labels win, and a
``SERVICE_<port>_*`` key wins over the plain one) overriding name, ID and tags, the
rest going into Meta, and a Consul check from the ``check_*`` keys. Where Registrator
is wrong this module is not: the address comes from a chosen network rather than an
arbitrary one, IPv6-only networks work, a script check runs through a shell, and the
container's own HEALTHCHECK becomes a check the watcher keeps in step.

A container whose ``SERVICE_*`` values cannot be honoured raises ``ContainerError``
naming it, so the caller logs it and skips the container instead of registering half
of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from waypost.durations import parse_duration

__all__ = [
    "HEALTH_SUFFIX",
    "MARKER_CONTAINER",
    "MARKER_HOST",
    "SERVICE_ID_PATTERN",
    "TTL_SUFFIX",
    "ContainerError",
    "Desired",
    "Options",
    "container_name",
    "desired_services",
    "health_status",
    "split_tags",
]

MARKER_HOST = "registrator-host"
"""Meta key naming the registrator host that owns a service, so a restart finds its own."""
MARKER_CONTAINER = "registrator-container"
"""Meta key with the container ID a service came from."""
HEALTH_SUFFIX = ":health"
TTL_SUFFIX = ":ttl"
DEFAULT_INTERVAL = "10s"
HEALTH_TTL = "1h"
"""TTL of the HEALTHCHECK mirror without ``-ttl``: the watcher re-asserts it on every
health event and every refresh, so it only expires if the registrator is gone that long."""

SERVICE_ID_PATTERN = re.compile(r"^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+(?::udp)?$")
"""Registrator's own ID shape, which ``-cleanup`` uses to recognise this host's entries."""

_STATUSES = ("passing", "warning", "critical")
_DURATION_KEYS = ("check_interval", "check_timeout", "check_deregister_after", "check_ttl")


class ContainerError(Exception):
    """A container's ``SERVICE_*`` settings cannot be honoured; the message names it."""


@dataclass(frozen=True)
class Options:
    """The flags that shape registrations (Registrator's ``bridge.Config``)."""

    hostname: str
    host_ip: str = ""
    """``-ip``: the address of every published port."""
    resolved_host_ip: str = ""
    """What ``hostname`` resolved to at start, for ports bound to every address."""
    internal: bool = False
    explicit: bool = False
    tags: tuple[str, ...] = ()
    network: str = ""
    ttl: int = 0


@dataclass(frozen=True)
class Desired:
    """One service as it should be registered: the agent's registration body, and the
    health status to mirror (None when the image has no HEALTHCHECK). The status stays
    out of the body so that a health change is a check update, not a re-registration."""

    id: str
    body: dict[str, Any]
    health: tuple[str, str] | None = None


def container_name(container: dict[str, Any]) -> str:
    name = str(container.get("Name") or container.get("Id", "")[:12])
    return name[1:] if name.startswith("/") else name


def split_tags(text: str) -> list[str]:
    """A comma list where ``\\,`` is a literal comma; empty items are dropped."""
    tags, current, i = [], [], 0
    while i < len(text):
        if text.startswith("\\,", i):
            current.append(",")
            i += 2
            continue
        if text[i] == ",":
            tags.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    tags.append("".join(current))
    return [t for t in tags if t]


def _service_metadata(config: dict[str, Any], port: str) -> tuple[dict[str, str], set[str]]:
    """Registrator's ``serviceMetaData``: env then labels, lower-cased keys, port keys first."""
    pairs = [str(e).split("=", 1) for e in config.get("Env") or []]
    pairs += [[str(k), str(v)] for k, v in (config.get("Labels") or {}).items()]
    metadata: dict[str, str] = {}
    from_port: set[str] = set()
    for pair in pairs:
        if len(pair) < 2 or not pair[0].startswith("SERVICE_"):
            continue
        key = pair[0][len("SERVICE_") :].lower()
        if key in from_port:
            continue
        head, sep, rest = key.partition("_")
        if head.isdigit() and sep:
            if head == port:
                metadata[rest] = pair[1]
                from_port.add(rest)
            continue
        metadata[key] = pair[1]
    return metadata, from_port


@dataclass(frozen=True)
class _Port:
    exposed: str
    proto: str
    host_port: str
    host_ip: str


def _ports(container: dict[str, Any]) -> list[_Port]:
    """Exposed ports count as published on the same port (host networking), then the
    runtime bindings replace them (bridge networking; an unpublished port has none)."""
    bindings: dict[str, Any] = {
        p: [{"HostIp": "0.0.0.0", "HostPort": p.split("/")[0]}]
        for p in (container.get("Config") or {}).get("ExposedPorts") or {}
    }
    bindings.update((container.get("NetworkSettings") or {}).get("Ports") or {})
    ports = []
    for key, published in bindings.items():
        exposed, _, proto = str(key).partition("/")
        first = published[0] if published else {}
        ports.append(
            _Port(
                exposed,
                proto or "tcp",
                str(first.get("HostPort") or ""),
                str(first.get("HostIp") or "0.0.0.0"),
            )
        )
    return sorted(ports, key=lambda p: (int(p.exposed) if p.exposed.isdigit() else 0, p.proto))


def _network_address(container: dict[str, Any], chosen: str, name: str) -> str:
    """The container's address on the chosen network, else its only one; IPv6 when it has no IPv4."""
    settings = container.get("NetworkSettings") or {}
    networks: dict[str, Any] = settings.get("Networks") or {}
    if chosen:
        if chosen not in networks:
            raise ContainerError(
                f"container {name}: not attached to network {chosen!r} "
                f"(attached: {', '.join(sorted(networks)) or 'none'})"
            )
        entry = networks[chosen]
    elif len(networks) == 1:
        entry = next(iter(networks.values()))
    elif settings.get("IPAddress") or settings.get("GlobalIPv6Address"):
        entry = settings
    elif networks:
        raise ContainerError(
            f"container {name}: attached to networks {', '.join(sorted(networks))}; "
            "choose one with SERVICE_NETWORK or -network"
        )
    else:
        return ""
    return str(entry.get("IPAddress") or entry.get("GlobalIPv6Address") or "")


def _image_name(config: dict[str, Any]) -> str:
    base = str(config.get("Image") or "").rsplit("/", 1)[-1]
    return base.split("@", 1)[0].split(":", 1)[0]


def _validate(metadata: dict[str, str], name: str) -> None:
    """Check values caught here, where the message can name the container and the variable;
    the agent's own 400 would name neither."""
    for key in _DURATION_KEYS:
        value = metadata.get(key, "")
        if value:
            try:
                parse_duration(value)
            except ValueError as exc:
                raise ContainerError(f"container {name}: SERVICE_{key.upper()}: {exc}") from None
    status = metadata.get("check_initial_status", "")
    if status and status not in _STATUSES:
        raise ContainerError(
            f"container {name}: SERVICE_CHECK_INITIAL_STATUS: "
            f"{status!r} is not one of passing, warning, critical"
        )


def _build_check(metadata: dict[str, str], ip: str, port: int) -> dict[str, Any] | None:
    """Registrator's Consul ``buildCheck``: the first check kind set wins, in its order."""
    address = f"[{ip}]" if ":" in ip else ip
    check: dict[str, Any] = {}
    if metadata.get("check_http"):
        check["HTTP"] = f"http://{address}:{port}{metadata['check_http']}"
        method = metadata.get("check_http_method")
    elif metadata.get("check_https"):
        check["HTTP"] = f"https://{address}:{port}{metadata['check_https']}"
        method = metadata.get("check_https_method") or metadata.get("check_http_method")
        if metadata.get("check_tls_skip_verify"):
            check["TLSSkipVerify"] = True
    elif metadata.get("check_script"):
        script = metadata["check_script"].replace("$SERVICE_IP", ip).replace("$SERVICE_PORT", str(port))
        check["Args"] = ["/bin/sh", "-c", script]
    elif metadata.get("check_ttl"):
        check["TTL"] = metadata["check_ttl"]
    elif metadata.get("check_tcp"):
        check["TCP"] = f"{address}:{port}"
    elif metadata.get("check_grpc"):
        check["GRPC"] = f"{address}:{port}"
        if metadata.get("check_grpc_use_tls"):
            check["GRPCUseTLS"] = True
            if metadata.get("check_tls_skip_verify"):
                check["TLSSkipVerify"] = True
    else:
        return None
    if "HTTP" in check and method:
        check["Method"] = method
    if "TTL" not in check:
        check["Interval"] = metadata.get("check_interval") or DEFAULT_INTERVAL
        if metadata.get("check_timeout") and "Args" not in check:
            check["Timeout"] = metadata["check_timeout"]
    if metadata.get("check_initial_status"):
        check["Status"] = metadata["check_initial_status"]
    if metadata.get("check_deregister_after"):
        check["DeregisterCriticalServiceAfter"] = metadata["check_deregister_after"]
    return check


def health_status(container: dict[str, Any]) -> tuple[str, str] | None:
    """The HEALTHCHECK state as a Consul status and output; None when the image has none."""
    health_config = (container.get("Config") or {}).get("Healthcheck") or {}
    test = health_config.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    health = (container.get("State") or {}).get("Health") or {}
    log = health.get("Log") or []
    output = str(log[-1].get("Output", "")).strip() if log and isinstance(log[-1], dict) else ""
    status = str(health.get("Status") or "starting")
    return ("passing" if status == "healthy" else "critical", output or f"container health: {status}")


def desired_services(container: dict[str, Any], options: Options) -> list[Desired]:
    """Every service this container should have registered, in exposed-port order."""
    config = container.get("Config") or {}
    name = container_name(container)
    candidates = [p for p in _ports(container) if options.internal or p.host_port]
    group = len(candidates) > 1
    health = health_status(container)
    out: list[Desired] = []
    for port in candidates:
        metadata, from_port = _service_metadata(config, port.exposed)
        if metadata.get("ignore"):
            continue
        service_name = metadata.get("name", "")
        if not service_name:
            if options.explicit:
                continue
            service_name = _image_name(config)
        if group and "name" not in from_port:
            service_name += f"-{port.exposed}"
        _validate(metadata, name)
        ip, number = _address(container, port, metadata, options, name)
        service_id = metadata.get("id") or f"{options.hostname}:{name}:{port.exposed}"
        if port.proto == "udp" and not metadata.get("id"):
            service_id += ":udp"
        tags = split_tags(metadata.get("tags", "")) + list(options.tags)
        if port.proto == "udp":
            tags.append("udp")
        meta = {k: v for k, v in metadata.items() if k not in ("id", "tags", "name")}
        meta[MARKER_HOST] = options.hostname
        meta[MARKER_CONTAINER] = str(container.get("Id", ""))
        body: dict[str, Any] = {
            "ID": service_id,
            "Name": service_name,
            "Address": ip,
            "Port": number,
            "Tags": tags,
            "Meta": meta,
        }
        checks = []
        check = _build_check(metadata, ip, number)
        if check is not None:
            checks.append(
                {"CheckID": f"service:{service_id}", "Name": f"Service '{service_name}' check", **check}
            )
        if health is not None:
            checks.append(
                {
                    "CheckID": f"service:{service_id}{HEALTH_SUFFIX}",
                    "Name": "Container health",
                    "TTL": f"{options.ttl}s" if options.ttl else HEALTH_TTL,
                    "Notes": "HEALTHCHECK of the container",
                }
            )
        if options.ttl:
            checks.append(
                {
                    "CheckID": f"service:{service_id}{TTL_SUFFIX}",
                    "Name": "Registrator heartbeat",
                    "TTL": f"{options.ttl}s",
                    "Status": "passing",
                }
            )
        if checks:
            body["Checks"] = checks
        out.append(Desired(service_id, body, health))
    return out


def _address(
    container: dict[str, Any], port: _Port, metadata: dict[str, str], options: Options, name: str
) -> tuple[str, int]:
    """Registrator's choice of address, with the network chosen instead of guessed."""
    chosen = metadata.get("network") or options.network
    mode = str((container.get("HostConfig") or {}).get("NetworkMode") or "")
    if options.internal:
        return _network_address(container, chosen, name), int(port.exposed)
    host_ip = port.host_ip
    if mode not in ("", "bridge", "default", "host") and not mode.startswith("container:"):
        host_ip = _network_address(container, chosen or mode, name)
    if host_ip in ("0.0.0.0", "::", ""):
        host_ip = options.resolved_host_ip or host_ip
    if options.host_ip:
        host_ip = options.host_ip
    try:
        return host_ip, int(port.host_port)
    except ValueError:
        raise ContainerError(
            f"container {name}: port {port.exposed} has host port {port.host_port!r}"
        ) from None
