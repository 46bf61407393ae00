"""DNS settings, named and defaulted exactly like Consul's ``dns_config`` block.

``from_mapping`` accepts what the agent's config loader produces without caring about
its shape: either the whole agent config (``domain``, ``alt_domain``, ``recursors`` and
a nested ``dns_config``) or just the ``dns_config`` block, with durations as Go strings
("5s") or numbers of seconds. Unknown keys are ignored so that new Consul options do not
break DNS start-up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from waypost.durations import parse_duration

__all__ = ["DnsConfig", "SoaConfig", "parse_recursor"]

_STRATEGIES = ("sequential", "random")


@dataclass(frozen=True, slots=True)
class SoaConfig:
    refresh: int = 3600
    retry: int = 600
    expire: int = 86400
    min_ttl: int = 0


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """``dns_config`` plus the agent-level ``domain``, ``alt_domain`` and ``recursors``.

    ``allow_stale`` and ``max_stale`` are kept for fidelity but have no effect: answers
    come from the local catalog, which is never behind a leader.
    """

    domain: str = "consul."
    alt_domain: str = ""
    recursors: tuple[tuple[str, int], ...] = ()
    allow_stale: bool = True
    max_stale: float = 87600 * 3600.0
    only_passing: bool = False
    enable_truncate: bool = False
    udp_answer_limit: int = 3
    a_record_limit: int = 0
    node_ttl: float = 0.0
    service_ttl: Mapping[str, float] = field(default_factory=dict)
    soa: SoaConfig = field(default_factory=SoaConfig)
    recursor_timeout: float = 2.0
    recursor_strategy: str = "sequential"
    enable_additional_node_meta_txt: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "domain", _fqdn(self.domain))
        object.__setattr__(self, "alt_domain", _fqdn(self.alt_domain) if self.alt_domain else "")
        if self.recursor_strategy not in _STRATEGIES:
            raise ValueError(
                f"recursor_strategy must be one of {_STRATEGIES}, got {self.recursor_strategy!r}"
            )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> DnsConfig:
        """Build from an agent config mapping or a bare ``dns_config`` mapping."""
        nested = raw.get("dns_config")
        dns: Mapping[str, Any] = nested if isinstance(nested, Mapping) else raw
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for source in (dns, raw):
            for key, value in source.items():
                if key in known and key not in values and value is not None:
                    values[key] = value
        for key in ("max_stale", "node_ttl", "recursor_timeout"):
            if key in values:
                values[key] = _seconds(values[key])
        if "service_ttl" in values:
            values["service_ttl"] = {str(k): _seconds(v) for k, v in dict(values["service_ttl"]).items()}
        if "soa" in values:
            soa = dict(values["soa"])
            values["soa"] = SoaConfig(
                **{k: int(soa[k]) for k in ("refresh", "retry", "expire", "min_ttl") if k in soa}
            )
        if "recursors" in values:
            values["recursors"] = tuple(parse_recursor(str(r)) for r in values["recursors"])
        for key in ("udp_answer_limit", "a_record_limit"):
            if key in values:
                values[key] = int(values[key])
        return cls(**values)

    def service_ttl_for(self, service: str) -> int:
        """Seconds for ``service``: exact key first, then the longest ``prefix*`` key."""
        ttl = self.service_ttl.get(service)
        if ttl is None:
            best = -1
            for key, value in self.service_ttl.items():
                if key.endswith("*") and service.startswith(key[:-1]) and len(key) > best:
                    best, ttl = len(key), value
        return int(ttl) if ttl is not None else 0


def parse_recursor(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``v6`` or ``[v6]:port``; port 53 when omitted, as Consul.

    Host names are kept as given and resolved when a query is forwarded.
    """
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError(f"invalid recursor address {text!r}")
        ipaddress.IPv6Address(host)
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        host, port = text, 53
        if ":" in host:
            ipaddress.IPv6Address(host)
    if not host or not 0 < port < 65536:
        raise ValueError(f"invalid recursor port in {text!r}")
    return host, port


def _fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def _seconds(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return parse_duration(str(value))
