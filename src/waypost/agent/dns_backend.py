"""The DNS interface's view of the catalog: the in-memory indexes, answered case-insensitively."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

from waypost.acl.authorizer import DENY_ALL, Authorizer
from waypost.acl.resolve import Resolver as AclResolver
from waypost.agent.acl_tokens import AgentTokens
from waypost.agent.lean_dns import FRESH, Ask, ServerDnsBackend
from waypost.agent.views import Views
from waypost.config import AgentConfig, Duration
from waypost.dns import DnsConfig, DnsServer, Recursor
from waypost.dns.backend import DnsBackend, Instance, NodeRecord, Pending, PreparedResult
from waypost.dns.remote import RemoteDns
from waypost.query.dns import DnsQueries
from waypost.query.executor import Keep
from waypost.query.remote import RemoteDatacenters
from waypost.state import schema
from waypost.state.indexes import Indexes
from waypost.state.model import Node, NodeService, worst_status
from waypost.state.state import State

if TYPE_CHECKING:
    from waypost.dns.resolver import Resolver

__all__ = ["CatalogDnsBackend", "dns_config", "start_dns"]


_ACL_TABLES = (schema.ACL_TOKENS.name, schema.ACL_POLICIES.name, schema.ACL_ROLES.name)


class CatalogDnsBackend:
    """Reads only catalog tables, so KV writes never invalidate prepared DNS answers.

    With ACLs on, ``acl`` gives the DNS token's authorizer: only services and nodes it may
    read are answered, and ACL changes count as catalog changes for the prepared answers."""

    def __init__(
        self,
        state: State,
        datacenter: str,
        acl: Callable[[Indexes], Authorizer | None] | None = None,
        queries: DnsQueries | None = None,
    ) -> None:
        self._state = state
        self._datacenter = datacenter
        self._acl = acl
        self._queries = queries or DnsQueries(datacenter)
        tables: tuple[str, ...] = (
            "nodes",
            "services",
            "checks",
            schema.VIRTUAL_IPS.name,
            schema.PREPARED_QUERIES.name,
        )
        tables += _ACL_TABLES if acl else ()
        self._tables = [(t,) for t in tables]
        self._seen: tuple[Indexes | None, int, int] = (None, -1, 0)
        self._folded_at = -1
        self._services: dict[str, list[str]] = {}
        self._connect: dict[str, list[str]] = {}
        self._nodes: dict[str, str] = {}
        self._virtual_ips: dict[str, str] = {}

    @property
    def datacenter(self) -> str:
        return self._datacenter

    def revision(self) -> int:
        """Asked on every query: answered from the last look while nothing was written.
        Failed-over prepared answers change without a write here, so theirs counts too."""
        idx = self._state.indexes
        if idx is not self._seen[0] or idx.revision != self._seen[1]:
            self._seen = (idx, idx.revision, max(map(idx.topics.index, self._tables)))
        return self._seen[2] + self._queries.generation

    def _authz(self, idx: Indexes) -> Authorizer | None:
        """None when nothing is to be hidden; an unknown DNS token may read nothing."""
        if self._acl is None:
            return None
        authz = self._acl(idx) or DENY_ALL
        return None if authz.unrestricted else authz

    @staticmethod
    def _readable(authz: Authorizer | None, node: str, service: str | None = None) -> bool:
        if authz is None:
            return True
        if service is not None and not authz.allowed("service", service, "read"):
            return False
        return authz.allowed("node", node, "read")

    def _fold(self) -> Indexes:
        """Lower-cased name maps, rebuilt only when the catalog changed."""
        idx = self._state.indexes
        rev = self.revision()
        if rev != self._folded_at:
            self._services = _folded(idx.instances)
            self._connect = _folded(idx.connect)
            self._nodes = {name.lower(): name for name in idx.nodes}
            self._virtual_ips = {name.lower(): rec.IP for name, rec in idx.virtual_ips.items()}
            self._folded_at = rev
        return idx

    def _instance(self, idx: Indexes, node: Node, svc: NodeService) -> Instance:
        status = worst_status([c.Status for c in idx.checks_for(node.Node, svc.ID)])
        return Instance.of(NodeRecord.of(node), svc, status)

    def service_instances(
        self, service: str, tag: str | None, *, connect: bool = False
    ) -> Sequence[Instance]:
        idx = self._fold()
        authz = self._authz(idx)
        folded, listed = (self._connect, idx.connect) if connect else (self._services, idx.instances)
        out = []
        for name in folded.get(service.lower(), ()):
            if connect and authz is not None and not authz.allowed("service", name, "read"):
                continue  # as Consul's: finding a service's proxies takes reading that service
            for (node_name, _), svc in sorted(listed.get(name, {}).items()):
                if tag is not None and tag.lower() not in {t.lower() for t in svc.Tags}:
                    continue
                if not self._readable(authz, node_name, svc.Service):
                    continue
                node = idx.nodes.get(node_name)
                if node is not None:
                    out.append(self._instance(idx, node, svc))
        return out

    def node(self, name: str) -> NodeRecord | None:
        idx = self._fold()
        real = self._nodes.get(name.lower())
        found = idx.nodes.get(real) if real is not None else None
        if found is None or not self._readable(self._authz(idx), found.Node):
            return None
        return NodeRecord.of(found)

    def nodes_by_address(self, address: str) -> Sequence[NodeRecord]:
        idx = self._state.indexes
        authz = self._authz(idx)
        return [
            NodeRecord.of(n)
            for _, n in sorted(idx.nodes.items())
            if n.Address == address and self._readable(authz, n.Node)
        ]

    def services_by_address(self, address: str) -> Sequence[Instance]:
        idx = self._state.indexes
        authz = self._authz(idx)
        out = []
        for instances in idx.instances.values():
            for (node_name, _), svc in sorted(instances.items()):
                node = idx.nodes.get(node_name)
                if (
                    svc.Address == address
                    and node is not None
                    and self._readable(authz, node_name, svc.Service)
                ):
                    out.append(self._instance(idx, node, svc))
        return out

    def _keep(self, idx: Indexes) -> Keep | None:
        authz = self._authz(idx)
        return None if authz is None else lambda node, service: self._readable(authz, node, service)

    def prepared_query(self, name_or_id: str, client_ip: str = "") -> PreparedResult | Pending | None:
        idx = self._state.indexes
        return self._queries.answer(idx, name_or_id, self._keep(idx), client_ip)

    async def fail_over(self, name_or_id: str) -> None:
        idx = self._state.indexes
        await self._queries.fail_over(idx, name_or_id, self._keep(idx))

    def virtual_ip(self, name: str) -> str | None:
        idx = self._fold()
        authz = self._authz(idx)
        if authz is not None and not authz.allowed("service", name, "read"):
            return None
        return self._virtual_ips.get(name.lower())


def _folded(names: Iterable[str]) -> dict[str, list[str]]:
    """Each lowercased name to the names that fold to it."""
    out: dict[str, list[str]] = {}
    for name in names:
        out.setdefault(name.lower(), []).append(name)
    return out


def dns_config(cfg: AgentConfig) -> DnsConfig:
    """The DNS interface's settings from the agent's (durations as seconds)."""
    raw: dict[str, Any] = {}
    for f in fields(cfg.dns_config):
        value = getattr(cfg.dns_config, f.name)
        if isinstance(value, Duration):
            value = value.seconds
        elif f.name == "service_ttl":
            value = {k: d.seconds for k, d in value.items()}
        elif f.name == "soa":
            value = asdict(value)
        raw[f.name] = value
    raw.update(domain=cfg.domain, alt_domain=cfg.alt_domain, recursors=list(cfg.recursors))
    return DnsConfig.from_mapping(raw)


async def start_dns(
    state: State,
    cfg: AgentConfig,
    host: str,
    tokens: AgentTokens,
    acl_current: Callable[[], bool],
    remote: RemoteDns | None = None,
    failover: RemoteDatacenters | None = None,
    ask_server: Ask | None = None,
    views: Views | None = None,
) -> DnsServer:
    """With ACLs on, answers are what the agent's dns token (else its default token) may
    read, the token looked up per query since ``/v1/agent/token/dns`` may replace it;
    ``acl_current`` says when the down policy applies instead. Prepared queries fail over
    through ``failover``. A client agent, which does not hold the catalog, gives
    ``ask_server``: service and node names are then read from a server (``lean_dns``), and
    services, once seen, from its ``views``."""
    acl: Callable[[Indexes], Authorizer | None] | None = None
    if cfg.acl.enabled:
        permissions = AclResolver(cfg.acl, cfg.node_name, cfg.datacenter, reachable=acl_current)

        def acl(idx: Indexes) -> Authorizer | None:
            return permissions.authorizer(idx, tokens.get("dns") or tokens.get("default"))

    queries = DnsQueries(
        cfg.datacenter,
        failover,
        agent_node=cfg.node_name,
        token=lambda: tokens.get("dns") or tokens.get("default") or None,
    )
    backend: DnsBackend = CatalogDnsBackend(state, cfg.datacenter, acl, queries)
    if ask_server is not None:
        dns = cfg.dns_config
        backend = ServerDnsBackend(
            backend,
            ask_server,
            lambda: tokens.get("dns") or tokens.get("default"),
            fresh=dns.cache_max_age.seconds if dns.use_cache and dns.cache_max_age.seconds > 0 else FRESH,
            stale=dns.allow_stale,
            views=views,
        )
    config = dns_config(cfg)

    def resolver() -> Resolver:
        from waypost.dns.resolver import Resolver

        return Resolver(backend, config, remote=remote)

    server = DnsServer(resolver, host, cfg.ports.dns, recursor=Recursor.from_config(config))
    await server.start()
    return server
