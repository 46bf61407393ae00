"""The haproxy.cfg that ``waypost proxy -haproxy`` writes: one frontend per listener, each
with a backend of ``server-template`` slots.

The file is written once per listener set and says nothing about instances: every slot
starts ``disabled`` at a placeholder address, and the controller fills slots through the
runtime API (``set server ... addr``), so membership, weight and health changes never
need the file rewritten or HAProxy reloaded. Names are derived from the listener's bind
alone, so the same listener keeps the same backend across rewrites and reloads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from waypost.proxy.config import ListenerConfig
from waypost.proxy.haproxy_routes import Route, render_frontend

__all__ = ["BALANCE", "SLOT_PREFIX", "HaproxySettings", "backend_name", "render", "slot_names"]

SLOT_PREFIX = "s"
PLACEHOLDER = "127.0.0.1:1"
"""Where an empty slot points; never used, since empty slots stay in maintenance."""

BALANCE = {"round_robin": "roundrobin", "weighted": "roundrobin", "least_conn": "leastconn",
           "random_two": "random(2)"}  # fmt: skip
"""HAProxy's algorithm for each of the built-in proxy's (roundrobin is weighted in HAProxy)."""


@dataclass(frozen=True, slots=True)
class HaproxySettings:
    admin_socket: str
    slots: int = 16
    """Slots per backend in the file; more instances than that become dynamic servers."""
    retries: int = 3
    http_bind: str = ""
    """ip:port of the HTTP frontend routing by ``urlprefix-`` tags; empty for none."""

    @property
    def state_file(self) -> str:
        """Where the servers' state is saved before a reload, for the new worker to load."""
        return self.admin_socket + ".state"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def backend_name(listener: ListenerConfig) -> str:
    """The backend (and, with an ``f_`` prefix, frontend) of ``listener``: stable across reloads."""
    return f"b_{_safe(listener.service)}_{_safe(listener.host)}_{listener.port}"


def slot_names(count: int) -> list[str]:
    return [f"{SLOT_PREFIX}{n}" for n in range(1, count + 1)]


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _slots(settings: HaproxySettings) -> str:
    return f"    server-template {SLOT_PREFIX} 1-{settings.slots} {PLACEHOLDER} disabled"


def _route_backend(route: Route, settings: HaproxySettings) -> list[str]:
    return [f"# {route.tag} of service {route.service!r}", f"backend {route.backend}", "    mode http",
            "    balance roundrobin", "    timeout server 1m", _slots(settings), ""]  # fmt: skip


def _listener_blocks(listener: ListenerConfig, settings: HaproxySettings) -> list[str]:
    backend = backend_name(listener)
    idle = _ms(listener.idle_timeout) if listener.idle_timeout > 0 else "1h"
    return [
        f"# {listener.name}",
        f"frontend f_{backend[2:]}",
        f"    bind {listener.bind}",
        f"    timeout client {idle}",
        f"    default_backend {backend}",
        "",
        f"backend {backend}",
        f"    balance {BALANCE[listener.balance]}",
        f"    timeout connect {_ms(listener.connect_timeout)}",
        f"    timeout server {idle}",
        _slots(settings),
        "",
    ]


def render(
    listeners: Sequence[ListenerConfig], settings: HaproxySettings, routes: Sequence[Route] = ()
) -> str:
    """The whole file for the TCP ``listeners`` (HAProxy has no UDP; the caller leaves those
    out) and, with ``settings.http_bind``, the HTTP frontend for ``routes`` (most specific first)."""
    if settings.slots < 1:
        raise ValueError("slots: must be at least 1")
    udp = [item.name for item in listeners if item.protocol != "tcp"]
    if udp:
        raise ValueError(f"{udp[0]}: HAProxy proxies TCP only")
    lines = [
        "# Written by waypost proxy -haproxy. Instances are set through the runtime API;",
        "# this file changes only with the listener set and the HTTP routes.",
        "global",
        f"    stats socket {settings.admin_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        f"    server-state-file {settings.state_file}",
        "",
        "defaults",
        "    mode tcp",
        f"    retries {settings.retries}",
        "    option redispatch 1",
        "    load-server-state-from-file global",
        "    timeout connect 2s",
        "    timeout client 1h",
        "    timeout server 1h",
        "",
    ]
    for listener in sorted(listeners, key=backend_name):
        lines += _listener_blocks(listener, settings)
    if settings.http_bind:
        lines += render_frontend(settings.http_bind, routes)
        for route in routes:
            lines += _route_backend(route, settings)
    return "\n".join(lines)
