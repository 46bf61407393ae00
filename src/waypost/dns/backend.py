"""The read-only seam between the DNS server and whatever holds the catalog.

The DNS package never imports the state store. It asks a :class:`DnsBackend` a handful
of questions and turns the answers into records, so the resolver can be tested against a
static backend and the catalog can change shape without touching the DNS code.

Implementing the protocol:

* Every method is called synchronously on the event-loop thread and must not block;
  answer from memory.
* Names arrive lowercased (DNS is case-insensitive); match service names, tags and node
  names case-insensitively, as Consul's catalog indexes do.
* ``service_instances`` returns *every* instance, unhealthy ones included, each carrying
  the aggregated status of its node and service checks (see
  :func:`waypost.state.model.worst_status`). The resolver does the health filtering so
  that ``only_passing`` stays a DNS setting.
* ``revision`` must change whenever anything these methods could return changes. The
  resolver caches encoded answers per revision, so a missed bump serves stale records
  and a needless bump only costs a rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from waypost.state.model import Node, NodeService

__all__ = ["DnsBackend", "Instance", "NodeRecord", "Pending", "PreparedResult"]


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A catalog node as DNS sees it (Consul's ``Node``)."""

    name: str
    address: str
    datacenter: str
    tagged_addresses: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, node: Node) -> NodeRecord:
        """The DNS view of a catalog node."""
        return cls(node.Node, node.Address, node.Datacenter, node.TaggedAddresses, node.Meta)


@dataclass(frozen=True, slots=True)
class Instance:
    """One service instance with the health Consul would compute for it.

    ``address`` is the service's own address and may be empty, in which case the node
    address is used. ``tagged_addresses`` maps Consul's tagged-address keys
    (``lan_ipv4``, ``lan_ipv6``, ...) to addresses; ports of tagged addresses are not
    used by DNS. ``status`` is the worst of the node's and the service's checks:
    ``passing``, ``warning``, ``critical`` or ``maintenance``.
    """

    node: NodeRecord
    service: str
    address: str = ""
    port: int = 0
    tagged_addresses: Mapping[str, str] = field(default_factory=dict)
    weight_passing: int = 1
    weight_warning: int = 1
    status: str = "passing"

    @classmethod
    def of(cls, node: NodeRecord, service: NodeService, status: str) -> Instance:
        """The DNS view of a catalog service record on ``node``."""
        return cls(
            node=node,
            service=service.Service,
            address=service.Address,
            port=service.Port,
            tagged_addresses={k: v.Address for k, v in service.TaggedAddresses.items()},
            weight_passing=service.Weights.Passing,
            weight_warning=service.Weights.Warning,
            status=status,
        )


@dataclass(frozen=True, slots=True)
class PreparedResult:
    """The outcome of executing a prepared query for DNS.

    ``instances`` are already filtered by the query's own health rules. ``ttl`` is the
    query's ``DNS.TTL`` in seconds, or ``None`` to fall back to ``service_ttl``.
    ``near``: sorted near a node (``Near``; with ``_ip`` the asking client's), so executed
    afresh for each query as Consul does (a fresh shuffle, then the sort), sent in that
    order rather than reshuffled, and never cached.
    """

    service: str
    datacenter: str
    instances: Sequence[Instance]
    ttl: float | None = None
    near: bool = False


@dataclass(frozen=True, slots=True)
class Pending:
    """An answer the backend is still fetching: a prepared query failing over to another
    datacenter, or on a client agent a name it reads from a server (``query`` is then
    the backend's own key for it). An empty answer would be an NXDOMAIN that resolvers
    cache, so the DNS server awaits :meth:`DnsBackend.fail_over` for ``query`` (bounded)
    and then asks again."""

    query: str


class DnsBackend(Protocol):
    """Everything the DNS interface needs from the catalog."""

    @property
    def datacenter(self) -> str:
        """The local datacenter; queries naming any other datacenter get NXDOMAIN."""
        ...

    def revision(self) -> int:
        """A number that changes whenever any DNS-visible record changes."""
        ...

    def service_instances(
        self, service: str, tag: str | None, *, connect: bool = False
    ) -> Sequence[Instance] | Pending:
        """All instances of ``service`` (having ``tag`` if given), healthy or not; with
        ``connect``, those taking its Connect traffic instead: the proxies whose
        destination it is, and its Connect-native instances."""
        ...

    def node(self, name: str) -> NodeRecord | Pending | None:
        """The node called ``name``, if registered."""
        ...

    def nodes_by_address(self, address: str) -> Sequence[NodeRecord] | Pending:
        """Nodes whose ``Address`` equals ``address`` (canonical IP text), for PTR."""
        ...

    def services_by_address(self, address: str) -> Sequence[Instance]:
        """Instances whose own service ``Address`` equals ``address``, for PTR."""
        ...

    def prepared_query(self, name_or_id: str, client_ip: str = "") -> PreparedResult | Pending | None:
        """Execute a prepared query for a client at ``client_ip`` (what ``Near = "_ip"``
        sorts near); ``None`` if unknown or prepared queries are unsupported."""
        ...

    async def fail_over(self, name_or_id: str) -> None:
        """Returns once the answer a method said is :class:`Pending` (``name_or_id`` being
        its ``query``) has landed, or its fetch failed; the caller bounds the wait."""
        ...

    def virtual_ip(self, name: str) -> str | Pending | None:
        """The virtual IP of the service or declared virtual service ``name``, if it has one."""
        ...
