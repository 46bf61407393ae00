"""Consul's DNS interface: names, records and rcodes as Consul serves them."""

from waypost.dns.backend import DnsBackend, Instance, NodeRecord, PreparedResult
from waypost.dns.config import DnsConfig, SoaConfig
from waypost.dns.recursor import Recursor
from waypost.dns.resolver import Forward, Resolver
from waypost.dns.server import DnsServer

__all__ = [
    "DnsBackend",
    "DnsConfig",
    "DnsServer",
    "Forward",
    "Instance",
    "NodeRecord",
    "PreparedResult",
    "Recursor",
    "Resolver",
    "SoaConfig",
]
