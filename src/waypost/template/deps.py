"""Dependencies: what a template reads from the agent, parsed from consul-template's
spellings (``tag.name@dc~near|filter``), one blocking query each, and the decoding of
the agent's answer into the values templates see.

A ``Dependency`` is a hashable value, so every template asking for the same data shares
one entry in the brain and one blocking query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from waypost.gostrconv import go_quote
from waypost.template.errors import FuncError
from waypost.template.values import (
    CatalogNode,
    CatalogSnippet,
    HealthService,
    KeyPair,
    Node,
    ServiceTags,
    decode_value,
)

__all__ = ["Dependency", "parse_dependency"]

_WORD = "0-9A-Za-z_"
_DC = rf"(@(?P<dc>[{_WORD}.\-]+))?"
_QUERY = rf"(\?(?P<query>[{_WORD}\-=&]+))?"
_NEAR = rf"(~(?P<near>[{_WORD}.\-]+))?"
_FILTER = rf"(\|(?P<filter>[{_WORD},]+))?"
_TAG = rf"((?P<tag>[{_WORD}=:.\-]+)\.)?"
_SERVICE = rf"(?P<name>[{_WORD}\-]+)"
_DOTTED_SERVICE = rf"name=(?P<name>[{_WORD}.\-]+)"
_NODE = rf"(?P<name>[{_WORD}.\-]+)"
_KEY = r"/?(?P<key>[^@?]+)"

_RES = {
    "health.service": re.compile(rf"\A{_TAG}{_SERVICE}{_QUERY}{_DC}{_NEAR}{_FILTER}\Z"),
    "health.service.dotted": re.compile(rf"\A{_DOTTED_SERVICE}{_QUERY}{_DC}{_NEAR}{_FILTER}\Z"),
    "catalog.services": re.compile(rf"\A{_QUERY}{_DC}\Z"),
    "catalog.node": re.compile(rf"\A{_NODE}{_QUERY}{_DC}\Z"),
    "catalog.nodes": re.compile(rf"\A{_QUERY}{_DC}{_NEAR}\Z"),
    "kv.get": re.compile(rf"\A{_KEY}{_QUERY}{_DC}\Z"),
    "kv.list": re.compile(rf"\A{_KEY}{_QUERY}{_DC}\Z"),
}
_STATUSES = ("any", "passing", "warning", "critical", "maintenance")
_UNSUPPORTED_QUERY = {
    "ns": "namespaces (an Enterprise feature)",
    "partition": "admin partitions (an Enterprise feature)",
    "peer": "cluster peering",
    "sameness-group": "sameness groups",
}


@dataclass(frozen=True, slots=True)
class Dependency:
    """One query against the agent; ``str()`` is consul-template's name for it."""

    kind: str
    name: str = ""
    tag: str = ""
    dc: str = ""
    near: str = ""
    filters: tuple[str, ...] = ()

    def __str__(self) -> str:
        label = self.name
        if self.tag:
            label = f"{self.tag}.{label}"
        if self.dc:
            label += "@" + self.dc
        if self.near:
            label += "~" + self.near
        if self.filters:
            label += "|" + ",".join(self.filters)
        return f"{self.kind}({label})"

    @property
    def blocking(self) -> bool:
        """Datacenters and files have no index to block on; they are polled."""
        return self.kind not in ("catalog.datacenters", "file")

    def request(self) -> tuple[str, list[tuple[str, str]]]:
        """The HTTP path and query of this dependency's read."""
        params: list[tuple[str, str]] = [("dc", self.dc)] if self.dc else []
        if self.near:
            params.append(("near", self.near))
        if self.kind == "health.service":
            if self.tag:
                params.append(("tag", self.tag))
            if self.filters == ("passing",):
                params.append(("passing", "1"))
            return f"/v1/health/service/{self.name}", params
        if self.kind == "kv.get":
            return f"/v1/kv/{self.name}", params
        if self.kind == "kv.list":
            return f"/v1/kv/{self.name}", [*params, ("recurse", "1")]
        if self.kind == "catalog.services":
            return "/v1/catalog/services", params
        if self.kind == "catalog.node":
            return f"/v1/catalog/node/{self.name}", params
        if self.kind == "catalog.nodes":
            return "/v1/catalog/nodes", params
        if self.kind == "catalog.datacenters":
            return "/v1/catalog/datacenters", []
        raise ValueError(f"{self} is not read over HTTP")

    def decode(self, status: int, body: Any) -> Any:
        """The template value for an answer (404 means "absent" for KV and nodes)."""
        if status == 404 and self.kind != "catalog.node":
            return [] if self.kind == "kv.list" else None
        if self.kind == "health.service":
            services = [HealthService.from_entry(e) for e in body or []]
            services = [s for s in services if "any" in self.filters or s.Status in self.filters]
            if not self.near:
                services.sort(key=lambda s: (s.Node, s.ID))
            return services
        if self.kind == "kv.get":
            return decode_value(body[0].get("Value")) if body else None
        if self.kind == "kv.list":
            prefix = self.name
            return [KeyPair.from_api(raw, prefix) for raw in body or []]
        if self.kind == "catalog.services":
            snippets = [
                CatalogSnippet(name, ServiceTags(sorted(tags or []))) for name, tags in (body or {}).items()
            ]
            return sorted(snippets, key=lambda s: s.Name)
        if self.kind == "catalog.node":
            return CatalogNode.from_api(body) if body else CatalogNode()
        if self.kind == "catalog.nodes":
            nodes = [Node.from_api(n) for n in body or []]
            return nodes if self.near else sorted(nodes, key=lambda n: (n.Node, n.ID))
        if self.kind == "catalog.datacenters":
            return sorted(str(dc) for dc in body or [])
        return body


def _match(kind: str, text: str, label: str) -> dict[str, str]:
    m = _RES[kind].match(text)
    if m is None:
        raise FuncError(f"{label}: invalid format: {go_quote(text)}")
    groups = {k: v or "" for k, v in m.groupdict().items()}
    query = groups.pop("query", "")
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        feature = _UNSUPPORTED_QUERY.get(key)
        if feature is None:
            raise FuncError(f'{label}: invalid query parameter: "{key}"')
        if value and value != "default":
            raise FuncError(f"{label}: waypost does not support {feature} ({key}={value})")
    return groups


def parse_dependency(kind: str, text: str) -> Dependency:
    """A dependency from a template function's argument; FuncError with consul-template's
    message (``health.service: invalid format: "..."``) when it does not parse."""
    if kind == "health.service":
        dotted = text.startswith("name=")
        groups = _match("health.service.dotted" if dotted else kind, text, kind)
        filters: tuple[str, ...] = ("passing",)
        if groups["filter"]:
            found = []
            for f in groups["filter"].split(","):
                f = f.strip()
                if f and f not in _STATUSES:
                    raise FuncError(f"health.service: invalid filter: {go_quote(f)} in {go_quote(text)}")
                if f:
                    found.append(f)
            filters = tuple(sorted(found))
        return Dependency(kind, groups["name"], groups.get("tag", ""), groups["dc"], groups["near"], filters)
    if kind in ("kv.get", "kv.list"):
        groups = _match(kind, text, kind)
        return Dependency(kind, groups["key"], dc=groups["dc"])
    if kind == "catalog.node":
        groups = _match(kind, text, kind) if text else {"name": "", "dc": ""}
        return Dependency(kind, groups["name"], dc=groups["dc"])
    if kind == "catalog.nodes":
        groups = _match(kind, text, kind)
        return Dependency(kind, dc=groups["dc"], near=groups["near"])
    if kind == "catalog.services":
        groups = _match(kind, text, kind)
        return Dependency(kind, dc=groups["dc"])
    if kind in ("catalog.datacenters", "file"):
        return Dependency(kind, text)
    raise ValueError(f"unknown dependency kind {kind}")
