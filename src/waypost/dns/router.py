"""Questions to prepared answers: Consul's DNS semantics in one place.

:meth:`Router.build` runs once per (question, backend revision) and its result is cached,
so this module favours clarity over speed. It decides rcodes the way Consul does:

* unknown names, unknown datacenters, services with no healthy instance: NXDOMAIN with
  the zone's SOA in AUTHORITY;
* a name that exists but has nothing of the asked type: NOERROR with the SOA (NODATA);
* AXFR: NOTIMP; names outside the domain: forwarded, or REFUSED without recursors;
* names in another datacenter this agent federates with: relayed to that datacenter;
* a prepared query whose failed-over answer is not known yet: :class:`Pending`, which
  the server awaits (SERVFAIL if it does not land in time, never NXDOMAIN);
* every answer from the zone has AA set, and RA only when recursors are configured.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdata

from waypost.dns.backend import DnsBackend, Instance, NodeRecord, Pending
from waypost.dns.config import DnsConfig
from waypost.dns.names import (
    AddrName,
    NodeName,
    PreparedName,
    ReverseName,
    ServiceName,
    VirtualName,
    classify,
    lookup_for,
)
from waypost.dns.records import (
    IP,
    TYPE_A,
    TYPE_AAAA,
    TYPE_ANY,
    TYPE_AXFR,
    TYPE_NS,
    TYPE_SOA,
    TYPE_SRV,
    TYPE_TXT,
    Encoder,
    address_rdata,
    cname_rdata,
    hex_name,
    ns_rdata,
    parse_ip,
    pick_address,
    ptr_rdata,
    rfc1464,
    soa_rdata,
    srv_rdata,
    txt_rdata,
)
from waypost.dns.remote import RemoteDns
from waypost.dns.wire import NOERROR, NOTIMP, NXDOMAIN, REFUSED, Answer

__all__ = ["Router"]

# Which question types an IPv4 or IPv6 address yields a record for (Consul's makeARecord).
_V4_TYPES = frozenset({TYPE_SRV, TYPE_A, TYPE_ANY, TYPE_NS, TYPE_TXT})
_V6_TYPES = frozenset({TYPE_SRV, TYPE_AAAA, TYPE_ANY, TYPE_NS, TYPE_TXT})
_NODE_TYPES = frozenset({TYPE_ANY, TYPE_A, TYPE_AAAA, TYPE_TXT})
_MAX_NAMESERVERS = 3
_CONSUL_SERVICE = "consul"


@dataclass(frozen=True, slots=True)
class _Question:
    wire: bytes
    name: dns.name.Name
    qtype: int
    domain: dns.name.Name
    encoder: Encoder

    def rr(self, owner: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> bytes:
        return self.encoder.rr(owner, ttl, rdata)


class Router:
    """Builds the :class:`~waypost.dns.wire.Answer` for one question."""

    def __init__(
        self,
        backend: DnsBackend,
        config: DnsConfig,
        clock: Callable[[], float],
        remote: RemoteDns | None = None,
    ) -> None:
        self._backend = backend
        self._remote = remote
        self._config = config
        self._clock = clock
        self._ra = bool(config.recursors)

    def build(self, question: bytes, qtype: int, client_ip: str = "") -> Answer | str | Pending | None:
        """The answer to ``question`` (lowercased wire question) from a client at
        ``client_ip``, ``None`` to forward it to the recursors, the name of the datacenter
        to relay it to, or a prepared query's :class:`Pending` failover."""
        name = dns.name.from_wire(question, 0)[0]
        labels = tuple(label.decode("latin-1") for label in name.labels[:-1])
        zone = classify(labels, self._config.domain, self._config.alt_domain)
        if not zone.domain:
            return None if self._ra else Answer(REFUSED, question, authoritative=False, echo_edns=False)
        q = _Question(question, name, qtype, dns.name.from_text(zone.domain), Encoder(name))
        lookup = lookup_for(zone, qtype, self._backend.datacenter)
        if isinstance(lookup, ReverseName):
            return self._reverse(q, lookup)
        if qtype in (TYPE_SOA, TYPE_NS):
            return self._zone_apex(q)
        if qtype == TYPE_AXFR:
            return Answer(NOTIMP, question, recursion_available=self._ra)
        if lookup is None:
            return self._negative(q, NXDOMAIN)
        if not isinstance(lookup, AddrName) and lookup.datacenter != self._backend.datacenter:
            if self._remote is not None and self._remote.known(lookup.datacenter):
                return lookup.datacenter
            return self._negative(q, NXDOMAIN)
        if isinstance(lookup, ServiceName):
            found = self._backend.service_instances(lookup.service, lookup.tag, connect=lookup.connect)
            if isinstance(found, Pending):
                return found
            return self._service(q, [i for i in found if self._healthy(i)], lookup.service, lookup.datacenter)
        if isinstance(lookup, PreparedName):
            result = self._backend.prepared_query(lookup.query, client_ip)
            if result is None:
                return self._negative(q, NXDOMAIN)
            if isinstance(result, Pending):
                return result
            ttl = int(result.ttl) if result.ttl is not None else None
            answer = self._service(
                q, list(result.instances), result.service, result.datacenter, ttl, shuffle=not result.near
            )
            return dataclasses.replace(answer, per_query=True) if result.near else answer
        if isinstance(lookup, NodeName):
            node = self._backend.node(lookup.node)
            return node if isinstance(node, Pending) else self._node(q, node)
        if isinstance(lookup, VirtualName):
            return self._virtual(q, lookup)
        return self._addr(q, lookup.ip)

    def _healthy(self, instance: Instance) -> bool:
        if instance.status == "passing":
            return True
        return instance.status == "warning" and not self._config.only_passing

    def _negative(self, q: _Question, rcode: int) -> Answer:
        return Answer(rcode, q.wire, authority=(self._soa(q),), recursion_available=self._ra, has_soa=True)

    def _soa(self, q: _Question) -> bytes:
        soa = self._config.soa
        return q.rr(q.domain, soa.min_ttl, soa_rdata(q.domain, int(self._clock()), soa))

    def _answer(
        self,
        q: _Question,
        answers: Sequence[bytes],
        *,
        answer_extra: tuple[str, ...] = (),
        extras: Mapping[str, tuple[bytes, ...]] | None = None,
        additional: tuple[bytes, ...] = (),
        shuffle: bool = False,
        limit: int = 0,
        srv: bool = False,
        has_soa: bool = False,
    ) -> Answer:
        """A positive answer, or NODATA when there is nothing to say."""
        if not answers:
            return self._negative(q, NOERROR)
        return Answer(
            NOERROR,
            q.wire,
            tuple(answers),
            answer_extra=answer_extra,
            extras=extras or {},
            additional=additional,
            recursion_available=self._ra,
            shuffle=shuffle,
            limit=limit,
            srv=srv,
            has_soa=has_soa,
        )

    def _service(
        self,
        q: _Question,
        instances: list[Instance],
        service: str,
        dc: str,
        ttl: int | None = None,
        *,
        shuffle: bool = True,
    ) -> Answer:
        if not instances:
            return self._negative(q, NXDOMAIN)
        if ttl is None:
            ttl = self._config.service_ttl_for(service)
        if q.qtype == TYPE_SRV:
            return self._srv(q, instances, dc, ttl, shuffle)
        answers: list[bytes] = []
        cnames: list[bytes] = []
        for inst in instances:
            target, ip = self._service_target(q, inst, dc)
            if ip is not None:
                rdata = self._address(ip, q.qtype)
                if rdata is not None:
                    answers.append(q.rr(q.name, ttl, rdata))
            elif target is not None:
                cnames.append(q.rr(q.name, ttl, cname_rdata(target)))
        unique = list(dict.fromkeys(answers)) or cnames[:1]
        return self._answer(q, unique, shuffle=shuffle, limit=self._config.a_record_limit)

    def _srv(self, q: _Question, instances: list[Instance], dc: str, ttl: int, shuffle: bool) -> Answer:
        answers: list[bytes] = []
        keys: list[str] = []
        extras: dict[str, tuple[bytes, ...]] = {}
        seen: set[tuple[str, str, int]] = set()
        for inst in instances:
            address = pick_address(inst.address, inst.tagged_addresses, TYPE_ANY)
            if (inst.node.name, address, inst.port) in seen:
                continue
            seen.add((inst.node.name, address, inst.port))
            target, ip = self._service_target(q, inst, dc)
            if target is None:
                continue
            weight = inst.weight_warning if inst.status == "warning" else inst.weight_passing
            answers.append(q.rr(q.name, ttl, srv_rdata(weight, inst.port, target)))
            extra = [q.rr(target, ttl, address_rdata(ip))] if ip is not None else []
            if self._config.enable_additional_node_meta_txt:
                extra += self._meta(q, self._node_fqdn(q, inst.node.name, dc), inst.node, ttl)
            key = f"{target.to_text().lower()}|{inst.node.name}" if extra else ""
            keys.append(key)
            if key:
                extras.setdefault(key, tuple(extra))
        return self._answer(q, answers, answer_extra=tuple(keys), extras=extras, shuffle=shuffle, srv=True)

    def _service_target(
        self, q: _Question, inst: Instance, dc: str
    ) -> tuple[dns.name.Name | None, IP | None]:
        """Consul's choice of SRV target and address for an instance.

        The node's name and address when the service has no address of its own (or its
        address is the question itself), ``<hex>.addr.<dc>`` for a service IP, and the
        host name itself when an address is not an IP.
        """
        service_addr = pick_address(inst.address, inst.tagged_addresses, q.qtype)
        node_addr = pick_address(inst.node.address, inst.node.tagged_addresses, q.qtype)
        node_ip = parse_ip(node_addr)
        if not service_addr and node_ip is not None:
            if node_addr != inst.node.address:
                return self._addr_fqdn(q, node_ip, dc), node_ip
            return self._node_fqdn(q, inst.node.name, dc), node_ip
        if not service_addr:
            return (dns.name.from_text(node_addr), None) if node_addr else (None, None)
        service_ip = parse_ip(service_addr)
        if service_ip is not None:
            return self._addr_fqdn(q, service_ip, dc), service_ip
        host = dns.name.from_text(service_addr)
        if host == q.name and node_ip is not None:
            return self._node_fqdn(q, inst.node.name, dc), node_ip
        return host, None

    @staticmethod
    def _node_fqdn(q: _Question, node: str, dc: str) -> dns.name.Name:
        return dns.name.from_text(f"{node}.node.{dc}", q.domain)

    @staticmethod
    def _addr_fqdn(q: _Question, ip: IP, dc: str) -> dns.name.Name:
        return dns.name.from_text(f"{hex_name(ip)}.addr.{dc}", q.domain)

    @staticmethod
    def _address(ip: IP, qtype: int) -> dns.rdata.Rdata | None:
        if qtype in (_V4_TYPES if ip.version == 4 else _V6_TYPES):
            return address_rdata(ip)
        return None

    def _meta(self, q: _Question, owner: dns.name.Name, node: NodeRecord, ttl: int) -> list[bytes]:
        return [q.rr(owner, ttl, txt_rdata(rfc1464(k, v))) for k, v in node.meta.items()]

    def _node(self, q: _Question, node: NodeRecord | None) -> Answer:
        if node is None:
            return self._negative(q, NXDOMAIN)
        if q.qtype not in _NODE_TYPES:
            return self._negative(q, NOERROR)
        ttl = int(self._config.node_ttl)
        answers: list[bytes] = []
        if q.qtype != TYPE_TXT:
            answers += self._node_records(q, node, q.name, q.qtype, ttl)
        meta: list[bytes] = []
        if q.qtype in (TYPE_TXT, TYPE_ANY) or self._config.enable_additional_node_meta_txt:
            meta = self._meta(q, q.name, node, ttl)
        if q.qtype in (TYPE_TXT, TYPE_ANY):
            return self._answer(q, answers + meta)
        return self._answer(q, answers, additional=tuple(meta))

    def _node_records(
        self, q: _Question, node: NodeRecord, owner: dns.name.Name, qtype: int, ttl: int
    ) -> list[bytes]:
        address = pick_address(node.address, node.tagged_addresses, qtype)
        ip = parse_ip(address)
        if ip is None:
            return [q.rr(owner, ttl, cname_rdata(dns.name.from_text(address)))] if address else []
        rdata = self._address(ip, qtype)
        return [q.rr(owner, ttl, rdata)] if rdata is not None else []

    def _addr(self, q: _Question, ip: IP) -> Answer:
        wanted = TYPE_A if ip.version == 4 else TYPE_AAAA
        if q.qtype not in (wanted, TYPE_ANY):
            return self._negative(q, NOERROR)
        return self._answer(q, [q.rr(q.name, int(self._config.node_ttl), address_rdata(ip))])

    def _virtual(self, q: _Question, lookup: VirtualName) -> Answer | Pending:
        """The name's virtual IP at the node TTL, as Consul answers it; a name without one
        is an empty NOERROR answer, which is also what Consul says."""
        found = self._backend.virtual_ip(lookup.service)
        if isinstance(found, Pending):
            return found
        ip = parse_ip(found or "")
        rdata = self._address(ip, q.qtype) if ip is not None else None
        answers = [q.rr(q.name, int(self._config.node_ttl), rdata)] if rdata is not None else []
        return self._answer(q, answers)

    def _zone_apex(self, q: _Question) -> Answer | Pending:
        """SOA and NS for any name in the zone list up to three healthy Consul servers."""
        ttl = int(self._config.node_ttl)
        dc = self._backend.datacenter
        found = self._backend.service_instances(_CONSUL_SERVICE, None)
        if isinstance(found, Pending):
            return found
        servers = [i for i in found if self._healthy(i)]
        ns: list[bytes] = []
        keys: list[str] = []
        glue: dict[str, tuple[bytes, ...]] = {}
        for inst in servers:
            fqdn = dns.name.from_text(f"{inst.node.name}.node.{dc}".lower(), q.domain)
            if fqdn.to_text() in glue:
                continue
            keys.append(fqdn.to_text())
            ns.append(q.rr(q.domain, ttl, ns_rdata(fqdn)))
            glue[keys[-1]] = tuple(self._node_records(q, inst.node, fqdn, TYPE_ANY, ttl))
        if q.qtype == TYPE_NS:
            return self._answer(
                q, ns, answer_extra=tuple(keys), extras=glue, shuffle=True, limit=_MAX_NAMESERVERS
            )
        return Answer(
            NOERROR,
            q.wire,
            (self._soa(q),),
            authority=tuple(ns[:_MAX_NAMESERVERS]),
            additional=tuple(itertools.chain.from_iterable(list(glue.values())[:_MAX_NAMESERVERS])),
            recursion_available=self._ra,
            has_soa=True,
        )

    def _reverse(self, q: _Question, lookup: ReverseName) -> Answer | Pending | None:
        """PTR: the first node with the address, else the first service with it."""
        target: dns.name.Name | None = None
        if lookup.ip is not None:
            address = str(lookup.ip)
            nodes = self._backend.nodes_by_address(address)
            if isinstance(nodes, Pending):
                return nodes
            if nodes:
                target = self._node_fqdn(q, nodes[0].name, nodes[0].datacenter)
            else:
                services = self._backend.services_by_address(address)
                if services:
                    inst = services[0]
                    target = dns.name.from_text(f"{inst.service}.service.{inst.node.datacenter}", q.domain)
        if target is None:
            return None if self._ra else self._negative(q, NXDOMAIN)
        answers = [q.rr(q.name, 0, ptr_rdata(target))]
        if q.qtype == TYPE_SOA:
            answers.insert(0, self._soa(q))
        return self._answer(q, answers, has_soa=q.qtype == TYPE_SOA)
