"""Question names to lookups, following Consul's label grammar.

Consul reads a name right to left: it strips the domain, then looks for the rightmost
label that names a lookup kind (``service``, ``node``, ``query``, ``addr``, ``virtual``, ...). Labels
left of it are the lookup's parts, labels right of it the locality (``<dc>`` or
``<dc>.dc``). For SRV questions a rightmost ``_label`` stands in for ``service``, which
is what makes bare RFC 2782 names like ``_web._tcp.consul`` work. Keeping that scan
here, apart from any catalog access, lets the grammar be tested as plain data.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from waypost.dns.records import TYPE_SRV

__all__ = [
    "AddrName",
    "Lookup",
    "NodeName",
    "PreparedName",
    "ReverseName",
    "ServiceName",
    "VirtualName",
    "Zone",
    "classify",
    "lookup_for",
]

_HEX = frozenset("0123456789abcdef")
_KINDS = frozenset({"service", "connect", "virtual", "ingress", "node", "query", "addr"})


@dataclass(frozen=True, slots=True)
class ServiceName:
    """``<tag>.<service>.service`` (or its SRV form), or with ``connect``
    ``<service>.connect``: what takes the service's Connect traffic, where as in Consul
    only the label next to ``connect`` names the service and there is no tag."""

    service: str
    tag: str | None
    datacenter: str
    connect: bool = False


@dataclass(frozen=True, slots=True)
class NodeName:
    node: str
    datacenter: str


@dataclass(frozen=True, slots=True)
class AddrName:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class PreparedName:
    query: str
    datacenter: str


@dataclass(frozen=True, slots=True)
class VirtualName:
    """``<service>.virtual``: the service's virtual IP; as in Consul, only the label next
    to ``virtual`` names the service."""

    service: str
    datacenter: str


@dataclass(frozen=True, slots=True)
class ReverseName:
    """A PTR name; ``ip`` is ``None`` when the arpa name does not spell an address."""

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None


Lookup = ServiceName | NodeName | AddrName | PreparedName | ReverseName | VirtualName


@dataclass(frozen=True, slots=True)
class Zone:
    """Where a question belongs: ``domain`` is the domain to answer with and ``labels``
    the question's labels left of it. ``domain`` is empty for names we do not serve."""

    domain: str
    labels: tuple[str, ...]
    reverse: bool = False


def classify(labels: tuple[str, ...], domain: str, alt_domain: str) -> Zone:
    """Find the served zone of a lowercased question, longest matching domain first."""
    candidates = sorted((d for d in (domain, alt_domain) if d), key=len, reverse=True)
    for zone in candidates:
        zone_labels = tuple(zone.rstrip(".").split("."))
        if len(labels) >= len(zone_labels) and labels[len(labels) - len(zone_labels) :] == zone_labels:
            return Zone(zone, labels[: len(labels) - len(zone_labels)])
    if labels and labels[-1] == "arpa":
        return Zone(domain, labels, reverse=True)
    return Zone("", labels)


def lookup_for(zone: Zone, qtype: int, local_dc: str) -> Lookup | None:
    """The lookup a served question asks for, or ``None`` when Consul would say NXDOMAIN."""
    if zone.reverse:
        return ReverseName(_ip_from_arpa(zone.labels))
    labels = zone.labels
    kind, parts, suffixes = "", labels, tuple[str, ...]()
    for i in range(len(labels) - 1, -1, -1):
        if labels[i] in _KINDS:
            kind, parts, suffixes = labels[i], labels[:i], labels[i + 1 :]
            break
        if qtype == TYPE_SRV and labels[i].startswith("_"):
            kind, parts, suffixes = "service", labels[: i + 1], labels[i + 1 :]
            break
    if not parts:
        return None
    if kind == "addr":
        return _addr(parts)
    if kind == "query":
        return _prepared(parts, suffixes, local_dc)
    dc = _datacenter(suffixes, local_dc)
    if dc is None:
        return None
    if kind == "service":
        return _service(parts, dc)
    if kind == "connect":
        return ServiceName(parts[-1], None, dc, connect=True)
    if kind == "node":
        return NodeName(".".join(parts), dc)
    if kind == "virtual":
        return VirtualName(parts[-1], dc)
    return None


def _datacenter(suffixes: tuple[str, ...], local_dc: str) -> str | None:
    if not suffixes:
        return local_dc
    if len(suffixes) == 1:
        return suffixes[0]
    if len(suffixes) == 2 and suffixes[1] == "dc":
        return suffixes[0]
    return None


def _service(parts: tuple[str, ...], dc: str) -> ServiceName:
    if len(parts) == 2 and parts[0].startswith("_") and parts[1].startswith("_"):
        tag = parts[1][1:]
        return ServiceName(parts[0][1:], None if tag == "tcp" else tag, dc)
    return ServiceName(parts[-1], ".".join(parts[:-1]) or None, dc)


def _prepared(parts: tuple[str, ...], suffixes: tuple[str, ...], local_dc: str) -> PreparedName | None:
    if len(suffixes) > 1:
        return None
    dc = suffixes[0] if suffixes else local_dc
    if len(parts) >= 2 and parts[0].startswith("_") and parts[-1].startswith("_"):
        return PreparedName(".".join(parts[:-1])[1:], dc)
    return PreparedName(".".join(parts), dc)


def _addr(parts: tuple[str, ...]) -> AddrName | None:
    if len(parts) != 1 or len(parts[0]) not in (8, 32) or not _HEX.issuperset(parts[0]):
        return None
    return AddrName(ipaddress.ip_address(bytes.fromhex(parts[0])))


def _ip_from_arpa(labels: tuple[str, ...]) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        if labels[-2:] == ("in-addr", "arpa") and len(labels) == 6:
            return ipaddress.IPv4Address(".".join(reversed(labels[:4])))
        if labels[-2:] == ("ip6", "arpa") and len(labels) == 34:
            nibbles = "".join(reversed(labels[:32]))
            if len(nibbles) != 32 or not _HEX.issuperset(nibbles):
                return None
            return ipaddress.IPv6Address(bytes.fromhex(nibbles))
    except ValueError:
        return None
    return None
