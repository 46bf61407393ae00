"""The grants a catalog write needs, as Consul's ``vetRegisterWithACL``,
``vetDeregisterWithACL`` and its transaction pre-checks decide them.

A write is vetted against what the catalog already holds, not only against the names the
body gives: a check joins the service the catalog has under its ServiceID, so a token
that may write one service cannot flip the health of another by naming its ID. Each
function yields (kind, name) pairs, every one needing ``write``, in Consul's order; the
caller refuses at the first one the token lacks, so a lookup failure found later (an
unknown service) is only reported to a token that passed the grants before it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar

from waypost.api.catalog import Deregistration, Registration
from waypost.api.common import HTTPError
from waypost.api.txn_ops import CheckOp, NodeOp, ServiceOp, TxnOp
from waypost.state.catalog_ops import check_on, keep_node_id
from waypost.state.indexes import Indexes
from waypost.state.model import HealthCheck, Node, NodeService

__all__ = ["Grant", "deregister_grants", "register_grants", "txn_grants"]

Grant = tuple[str, str]
"""(resource kind, name) the token must be able to write."""

_PROXY = "connect-proxy"
R = TypeVar("R")


def _node_fields(node: Node) -> tuple[object, ...]:
    return node.ID, node.Node, node.Address, node.Datacenter, node.TaggedAddresses, node.Meta


def changes_node(node: Node, current: Node | None, *, skip_node_update: bool) -> bool:
    """Consul's ``ChangesNode``: a service update that re-posts the node as stored needs no
    node grant. An omitted ID keeps the stored one here, so it changes nothing."""
    if current is None:
        return True
    if skip_node_update:
        return False
    return _node_fields(keep_node_id(node, current)) != _node_fields(current)


def _service_grants(svc: NodeService, current: NodeService | None) -> Iterator[Grant]:
    """A service, a proxy's destination, and the service its ID replaces (an overwrite
    removes that one)."""
    yield "service", svc.Service
    if svc.Kind == _PROXY:
        yield "service", svc.Proxy.DestinationServiceName if svc.Proxy is not None else ""
    if current is not None and current.Service != svc.Service:
        yield "service", current.Service


def _check_grant(node: str, service_id: str, owner: str | None) -> Grant:
    """A node-level check needs the node, a service's check its service (``owner``)."""
    return ("service", owner) if service_id and owner is not None else ("node", node)


def _stored_check_grant(node: str, current: HealthCheck | None) -> Iterator[Grant]:
    """Writing over a stored check takes it over, so it also needs what that one needed."""
    if current is not None:
        yield _check_grant(node, current.ServiceID, current.ServiceName)


def register_grants(idx: Indexes, reg: Registration) -> Iterator[Grant]:
    name = reg.node.Node
    on_node = idx.services.get(name, {})
    if changes_node(reg.node, idx.nodes.get(name), skip_node_update=reg.skip_node_update):
        yield "node", name
    for svc in reg.services:
        yield from _service_grants(svc, on_node.get(svc.ID))
    registered = {svc.ID for svc in reg.services}
    for check in reg.checks:
        if check.ServiceID not in registered:  # else its service was vetted above
            owner = on_node.get(check.ServiceID) if check.ServiceID else None
            if check.ServiceID and owner is None:
                raise HTTPError(400, f"Unknown service ID '{check.ServiceID}' for check ID '{check.CheckID}'")
            yield _check_grant(name, check.ServiceID, owner.Service if owner else None)
        yield from _stored_check_grant(name, idx.checks.get(name, {}).get(check.CheckID))


def deregister_grants(idx: Indexes, target: Deregistration) -> Iterator[Grant]:
    """The grants that stand in for node:write, which alone permits any deregistration
    (an agent whose token lost a service's grant can still remove it)."""
    node = target.node
    if target.service_id is not None:
        svc = idx.services.get(node, {}).get(target.service_id)
        if svc is None:
            raise HTTPError(400, f"Unknown service ID '{target.service_id}'")
        yield "service", svc.Service
    elif target.check_id is not None:
        check = idx.checks.get(node, {}).get(target.check_id)
        if check is None:
            raise HTTPError(400, f"Unknown check ID '{target.check_id}'")
        yield _check_grant(node, check.ServiceID, check.ServiceName)
    else:
        yield "node", node


def txn_grants(idx: Indexes, ops: Sequence[TxnOp]) -> list[list[Grant]]:
    """Per operation, what its node, service or check write needs (nothing for a get, whose
    result is filtered instead, nor for KV and session operations, checked elsewhere).

    A service's check is vetted against the service it will join (one set earlier in the
    same transaction, else the catalog's), never a name the body claims; writing over a
    stored service or check also needs what that one needed."""
    services: dict[tuple[str, str], NodeService | None] = {}
    checks: dict[tuple[str, str], HealthCheck | None] = {}
    grants: list[list[Grant]] = []
    for op in ops:
        needed: list[Grant] = []
        if isinstance(op, NodeOp) and op.verb != "get":
            needed.append(("node", op.node.Node))
        elif isinstance(op, ServiceOp) and op.verb != "get":
            key = (op.node, op.service.ID)
            needed += _service_grants(op.service, _stored(services, idx.services, key))
            services[key] = op.service if op.verb in ("set", "cas") else None
        elif isinstance(op, CheckOp) and op.verb != "get":
            node, check = op.check.Node, op.check
            key = (node, check.CheckID)
            owner = _stored(services, idx.services, (node, check.ServiceID)) if check.ServiceID else None
            needed.append(_check_grant(node, check.ServiceID, owner.Service if owner else None))
            needed += _stored_check_grant(node, _stored(checks, idx.checks, key))
            checks[key] = check_on(check, node, owner) if op.verb in ("set", "cas") else None
        grants.append(needed)
    return grants


def _stored(
    pending: Mapping[tuple[str, str], R | None], table: Mapping[str, Mapping[str, R]], key: tuple[str, str]
) -> R | None:
    """A record as an earlier operation of the transaction left it, else as stored."""
    if key in pending:
        return pending[key]
    return table.get(key[0], {}).get(key[1])
