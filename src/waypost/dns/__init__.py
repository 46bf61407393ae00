"""Consul's DNS interface: names, records and rcodes as Consul serves them."""

from typing import TYPE_CHECKING, Any

from waypost.dns.backend import DnsBackend, Instance, NodeRecord, PreparedResult
from waypost.dns.config import DnsConfig, SoaConfig
from waypost.dns.recursor import Recursor
from waypost.dns.server import DnsServer
from waypost.dns.wire import Forward

if TYPE_CHECKING:
    from waypost.dns.resolver import Resolver

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


def __getattr__(name: str) -> Any:
    """``Resolver`` is imported when first named: it loads dnspython (see ``server``)."""
    if name == "Resolver":
        from waypost.dns.resolver import Resolver

        return Resolver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
