"""A fixed, in-memory :class:`~waypost.dns.backend.DnsBackend` built from catalog records.

It serves tests and benchmarks, and shows how catalog records map onto the protocol:
an instance's status is the worst of its node's checks and its own checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

from waypost.dns.backend import Instance, NodeRecord, Pending, PreparedResult
from waypost.dns.recursor import Recursor
from waypost.state.model import HealthCheck, Node, NodeService, connect_target, worst_status

__all__ = ["StaticBackend", "StaticRemote"]


class StaticBackend:
    """Answers from records given once; ``revision`` only moves on :meth:`load`."""

    def __init__(self, datacenter: str = "dc1") -> None:
        self._datacenter = datacenter
        self._revision = 0
        self._nodes: dict[str, NodeRecord] = {}
        self._instances: list[Instance] = []
        self._tags: dict[int, frozenset[str]] = {}
        self._fronts: dict[int, str] = {}
        """By instance: the service whose Connect traffic it takes (lowercased), if any."""
        self._prepared: dict[str, PreparedResult | Pending] = {}
        self._virtual_ips: dict[str, str] = {}

    @property
    def datacenter(self) -> str:
        return self._datacenter

    def load(
        self,
        nodes: Iterable[Node],
        services: Mapping[str, Sequence[NodeService]],
        checks: Iterable[HealthCheck] = (),
        prepared: Mapping[str, PreparedResult | Pending] | None = None,
        virtual_ips: Mapping[str, str] | None = None,
    ) -> None:
        """Replace everything. ``services`` maps node names to the services on them."""
        check_list = list(checks)
        self._nodes = {
            n.Node.lower(): NodeRecord(n.Node, n.Address, n.Datacenter, dict(n.TaggedAddresses), dict(n.Meta))
            for n in nodes
        }
        self._instances, self._tags, self._fronts = [], {}, {}
        for node_name, node_services in services.items():
            node = self._nodes[node_name.lower()]
            node_statuses = [c.Status for c in check_list if c.Node == node_name and not c.ServiceID]
            for svc in node_services:
                statuses = node_statuses + [
                    c.Status for c in check_list if c.Node == node_name and c.ServiceID == svc.ID
                ]
                instance = Instance.of(node, svc, worst_status(statuses))
                self._tags[id(instance)] = frozenset(t.lower() for t in svc.Tags)
                self._fronts[id(instance)] = connect_target(svc).lower()
                self._instances.append(instance)
        self._prepared = {k.lower(): v for k, v in (prepared or {}).items()}
        self._virtual_ips = {k.lower(): v for k, v in (virtual_ips or {}).items()}
        self._revision += 1

    def revision(self) -> int:
        return self._revision

    def service_instances(
        self, service: str, tag: str | None, *, connect: bool = False
    ) -> Sequence[Instance]:
        service = service.lower()
        if connect:
            return [i for i in self._instances if self._fronts[id(i)] == service]
        return [
            i
            for i in self._instances
            if i.service.lower() == service and (tag is None or tag.lower() in self._tags[id(i)])
        ]

    def node(self, name: str) -> NodeRecord | None:
        return self._nodes.get(name.lower())

    def nodes_by_address(self, address: str) -> Sequence[NodeRecord]:
        return [n for n in self._nodes.values() if n.address == address]

    def services_by_address(self, address: str) -> Sequence[Instance]:
        return [i for i in self._instances if i.address == address]

    def prepared_query(self, name_or_id: str, client_ip: str = "") -> PreparedResult | Pending | None:
        return self._prepared.get(name_or_id.lower())

    async def fail_over(self, name_or_id: str) -> None:
        """Nothing lands here: a query loaded as pending waits until the caller gives up."""
        await asyncio.get_running_loop().create_future()

    def virtual_ip(self, name: str) -> str | None:
        return self._virtual_ips.get(name.lower())


class StaticRemote:
    """Other datacenters' DNS servers at fixed addresses (a ``RemoteDns``): queries for
    them are relayed as the recursors relay, first answering server wins."""

    def __init__(self, servers: Mapping[str, Sequence[tuple[str, int]]], timeout: float = 2.0) -> None:
        self._servers = {dc: list(addresses) for dc, addresses in servers.items()}
        self._timeout = timeout

    def known(self, datacenter: str) -> bool:
        return datacenter in self._servers

    async def resolve(self, datacenter: str, query: bytes, tcp: bool) -> bytes | None:
        return await Recursor(self._servers[datacenter], timeout=self._timeout).resolve(query, tcp)
