"""Discovery through the environment, in the variables Kubernetes sets for its Services.

Programs written for Kubernetes read ``DB_SERVICE_HOST`` and ``DB_PORT_5432_TCP_ADDR``;
giving them the same names means they run under ``waypost run`` unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["env_prefix", "instance_address", "service_env"]

_NOT_ENV = re.compile(r"[^A-Z0-9_]")


def env_prefix(service: str) -> str:
    """``web-api`` -> ``WEB_API``: upper-cased, dashes (and anything else no shell takes) to ``_``."""
    return _NOT_ENV.sub("_", service.upper())


def instance_address(entries: Sequence[Any]) -> tuple[str, int] | None:
    """Host and port of the first instance in a ``/v1/health/service`` answer that has both;
    the agent already orders them (nearest first with ``near=_agent``)."""
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        service = entry.get("Service") or {}
        node = entry.get("Node") or {}
        host = service.get("Address") or node.get("Address")
        port = service.get("Port")
        if isinstance(host, str) and host and isinstance(port, int) and port > 0:
            return host, port
    return None


def service_env(service: str, host: str, port: int) -> dict[str, str]:
    """Kubernetes' service variables for one instance (IPv6 hosts bracketed in the URLs)."""
    prefix = env_prefix(service)
    url_host = f"[{host}]" if ":" in host else host
    url = f"tcp://{url_host}:{port}"
    tcp = f"{prefix}_PORT_{port}_TCP"
    return {
        f"{prefix}_SERVICE_HOST": host,
        f"{prefix}_SERVICE_PORT": str(port),
        f"{prefix}_PORT": url,
        tcp: url,
        f"{tcp}_PROTO": "tcp",
        f"{tcp}_PORT": str(port),
        f"{tcp}_ADDR": host,
    }
