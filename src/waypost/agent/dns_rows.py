"""The parts of a ``/v1/health/service`` row that DNS and a read's simple filters use,
decoded alone: a client agent reads these rows from servers (``lean_dns``) and keeps them
in its views (``health_view``), where a whole decoded record per instance would cost
about ten times the row's own bytes."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from waypost.dns.backend import Instance, NodeRecord
from waypost.state.model import worst_status

__all__ = ["ROW", "ROWS", "DnsNode", "DnsRow", "tagged_instances"]


class _Health(msgspec.Struct, gc=False):
    Status: str = ""


class _Address(msgspec.Struct, gc=False):
    Address: str = ""


class _Weights(msgspec.Struct, gc=False):
    Passing: int = 1
    Warning: int = 1


class DnsNode(msgspec.Struct, gc=False):
    Node: str = ""
    Address: str = ""
    Datacenter: str = ""
    TaggedAddresses: dict[str, str] | None = None
    Meta: dict[str, str] | None = None

    def record(self) -> NodeRecord:
        return NodeRecord(
            self.Node, self.Address, self.Datacenter, self.TaggedAddresses or {}, self.Meta or {}
        )


class _Service(msgspec.Struct, gc=False):
    ID: str = ""
    Service: str = ""
    Tags: list[str] | None = None
    Address: str = ""
    Port: int = 0
    TaggedAddresses: dict[str, _Address] | None = None
    Weights: _Weights = msgspec.field(default_factory=_Weights)


class DnsRow(msgspec.Struct, gc=False):
    Node: DnsNode
    Service: _Service
    Checks: list[_Health] | None = None

    def passing(self) -> bool:
        return all(c.Status == "passing" for c in self.Checks or ())

    def has_tags(self, tags: Sequence[str]) -> bool:
        """Every one of ``tags``, without case, as the servers match ``?tag``."""
        have = {t.lower() for t in self.Service.Tags or ()}
        return all(t.lower() in have for t in tags)

    def node_meta(self, meta: Sequence[tuple[str, str]]) -> bool:
        found = self.Node.Meta or {}
        return all(found.get(k) == v for k, v in meta)

    def instance(self) -> Instance:
        svc = self.Service
        return Instance(
            node=self.Node.record(),
            service=svc.Service,
            address=svc.Address,
            port=svc.Port,
            tagged_addresses={k: v.Address for k, v in (svc.TaggedAddresses or {}).items()},
            weight_passing=svc.Weights.Passing,
            weight_warning=svc.Weights.Warning,
            status=worst_status([c.Status for c in self.Checks or ()]),
        )


ROW = msgspec.json.Decoder(DnsRow)
ROWS = msgspec.json.Decoder(list[DnsRow] | None)


def tagged_instances(rows: Sequence[DnsRow] | None) -> list[tuple[frozenset[str], Instance]]:
    """Each row's DNS instance with its tags, lower-cased as DNS names match them."""
    return [(frozenset(t.lower() for t in row.Service.Tags or ()), row.instance()) for row in rows or ()]
