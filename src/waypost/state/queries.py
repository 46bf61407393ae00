"""Catalog reads over the in-memory indexes. Each returns (index, topics, records): the
index Consul would report, and the topics whose change could change the answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from waypost.state.indexes import Indexes
from waypost.state.model import HealthCheck, Node, NodeService
from waypost.state.watch import Topic

__all__ = [
    "Read",
    "ServiceInstance",
    "catalog_nodes",
    "catalog_services",
    "has_tags",
    "health_checks_for_service",
    "node_checks",
    "node_matches_meta",
    "service_instances",
    "state_checks",
]

Read = tuple[int, tuple[Topic, ...], Any]


class ServiceInstance:
    """One instance of a service with its node and every check that applies to it."""

    __slots__ = ("checks", "node", "service")

    def __init__(self, node: Node, service: NodeService, checks: list[HealthCheck]) -> None:
        self.node = node
        self.service = service
        self.checks = checks

    def passing(self) -> bool:
        return all(c.Status == "passing" for c in self.checks)


def filter_row(inst: ServiceInstance) -> dict[str, Any]:
    """The instance with every field of its records, as Consul's bexpr sees them for
    ``?filter`` (a shape leaves out zero values that the Go structs it filters still have)."""
    return {"Node": inst.node, "Service": inst.service, "Checks": inst.checks}


def has_tags(service: NodeService, tags: Sequence[str]) -> bool:
    if not tags:
        return True
    have = {t.lower() for t in service.Tags}
    return all(t.lower() in have for t in tags)


def node_matches_meta(node: Node, meta: Sequence[tuple[str, str]]) -> bool:
    return all(node.Meta.get(k) == v for k, v in meta)


def service_instances(
    idx: Indexes,
    service: str,
    *,
    tags: Sequence[str] = (),
    node_meta: Sequence[tuple[str, str]] = (),
    passing_only: bool = False,
    connect: bool = False,
) -> tuple[int, tuple[Topic, ...], list[ServiceInstance]]:
    """Instances of ``service`` sorted by node then ID, as Consul's catalog returns them;
    with ``connect``, those taking its Connect traffic instead (Consul's ``connect=true``:
    its proxies and Connect-native instances, from their own index)."""
    kind = "connect" if connect else "service"
    listed = idx.connect if connect else idx.instances
    out: list[ServiceInstance] = []
    for (node_name, sid), svc in sorted(listed.get(service, {}).items()):
        if not has_tags(svc, tags):
            continue
        node = idx.nodes.get(node_name)
        if node is None or not node_matches_meta(node, node_meta):
            continue
        inst = ServiceInstance(node, svc, idx.checks_for(node_name, sid))
        if passing_only and not inst.passing():
            continue
        out.append(inst)
    return idx.service_index(service, kind), _service_topics(idx, service, kind), out


def _service_topics(idx: Indexes, service: str, kind: str = "service") -> tuple[Topic, ...]:
    """Only the service's own topic: a write to another service must not wake its watchers.
    A service never seen reports the table's index, so it also watches the table then."""
    if idx.topics.index((kind, service)):
        return ((kind, service),)
    return ((kind, service), ("services",))


def catalog_services(
    idx: Indexes,
    node_meta: Sequence[tuple[str, str]] = (),
    keep: Callable[[Node, NodeService], bool] | None = None,
) -> Read:
    """Service names with the union of their instances' tags; ``keep`` picks the instances."""
    result: dict[str, list[str]] = {}
    for name, instances in sorted(idx.instances.items()):
        tags: dict[str, None] = {}
        found = False
        for (node_name, _), svc in instances.items():
            node = idx.nodes.get(node_name)
            if node is None or not node_matches_meta(node, node_meta):
                continue
            if keep is not None and not keep(node, svc):
                continue
            found = True
            tags.update(dict.fromkeys(svc.Tags))
        if found:
            result[name] = list(tags)
    return idx.table_index("services"), (("services",), ("nodes",)), result


def catalog_nodes(idx: Indexes, node_meta: Sequence[tuple[str, str]] = ()) -> Read:
    nodes = [n for _, n in sorted(idx.nodes.items()) if node_matches_meta(n, node_meta)]
    return idx.table_index("nodes"), (("nodes",),), nodes


def node_checks(idx: Indexes, node: str) -> Read:
    checks = sorted(idx.checks.get(node, {}).values(), key=lambda c: c.CheckID)
    return max(1, idx.topics.index(("node", node)) or idx.table_index("checks")), (("node", node),), checks


def health_checks_for_service(idx: Indexes, service: str) -> Read:
    checks = [
        c
        for (node, sid) in sorted(idx.instances.get(service, {}))
        for c in idx.checks.get(node, {}).values()
        if c.ServiceID == sid
    ]
    return idx.service_index(service), _service_topics(idx, service), checks


def state_checks(idx: Indexes, state: str, node_meta: Sequence[tuple[str, str]] = ()) -> Read:
    out: list[HealthCheck] = []
    for node_name, checks in sorted(idx.checks.items()):
        node = idx.nodes.get(node_name)
        if node_meta and (node is None or not node_matches_meta(node, node_meta)):
            continue
        out.extend(c for _, c in sorted(checks.items()) if state == "any" or c.Status == state)
    return idx.table_index("checks"), (("checks",),), out
