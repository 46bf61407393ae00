"""Fabio-style HTTP routes for ``waypost proxy -haproxy-http``: a service tagged
``urlprefix-host/path`` (or ``urlprefix-/path`` for any host) is reached through one HTTP
frontend, by Host header and path prefix.

Tags are written into haproxy.cfg, so only the characters a host name or a URL path can
hold are accepted; anything else (and Fabio's options after the route, which HAProxy's
frontend cannot honour the same way) is left out with the reason, never written. Routes
are ordered most specific first, as Fabio matches them: a route with a host before one
without, a longer path before its prefixes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["PREFIX", "Route", "parse_route", "render_frontend", "routes_of"]

PREFIX = "urlprefix-"
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")
_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


@dataclass(frozen=True, slots=True, order=True)
class Route:
    service: str
    host: str
    path: str

    @property
    def tag(self) -> str:
        return f"{PREFIX}{self.host}{self.path}"

    @property
    def backend(self) -> str:
        """Stable across rewrites: the service's name (made safe) and a digest of the route."""
        digest = hashlib.sha1(f"{self.service}\0{self.tag}".encode()).hexdigest()[:10]
        return f"r_{re.sub(r'[^A-Za-z0-9_.-]', '_', self.service)}_{digest}"

    @property
    def specificity(self) -> tuple[int, int]:
        return (1 if self.host else 0, len(self.path))


def parse_route(service: str, tag: str) -> Route:
    """The route of one ``urlprefix-`` tag; ValueError saying why it cannot be written."""
    text = tag[len(PREFIX) :]
    if " " in text.strip():
        raise ValueError(f"{tag!r}: route options are not supported with HAProxy")
    text = text.strip()
    host, slash, path = text.partition("/")
    path = slash + path if slash else "/"
    if host and not _HOST.match(host):
        raise ValueError(f"{tag!r}: {host!r} is not a host name")
    if not _PATH.match(path):
        raise ValueError(f"{tag!r}: {path!r} is not a URL path")
    return Route(service, host.lower(), path)


def routes_of(services: Mapping[str, Sequence[str]]) -> tuple[list[Route], list[str]]:
    """The routes in a ``/v1/catalog/services`` answer, most specific first, and the
    reasons for the tags left out."""
    routes: set[Route] = set()
    problems = []
    for service, tags in services.items():
        for tag in tags or ():
            if not tag.startswith(PREFIX):
                continue
            try:
                routes.add(parse_route(service, tag))
            except ValueError as err:
                problems.append(f"service {service!r}: {err}")
    return sorted(routes, key=lambda r: (r.specificity, r), reverse=True), problems


def render_frontend(bind: str, routes: Iterable[Route]) -> list[str]:
    """The HTTP frontend's lines: one pair of conditions and a ``use_backend`` per route;
    a request no route takes is answered 404, as Fabio does."""
    lines = ["frontend f_http", "    mode http", f"    bind {bind}", "    option http-keep-alive",
             "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower"]  # fmt: skip
    for n, route in enumerate(routes):
        condition = f"p{n}"
        lines.append(f"    acl p{n} path_beg {route.path}")
        if route.host:
            lines.append(f"    acl h{n} var(txn.host) -m str {route.host.split(':')[0]}")
            condition = f"h{n} p{n}"
        lines.append(f"    use_backend {route.backend} if {condition}")
    lines += ["    default_backend b_no_route", "", "backend b_no_route", "    mode http",
              '    http-request return status 404 content-type text/plain string "no route"', ""]  # fmt: skip
    return lines
