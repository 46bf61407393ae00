"""Catalog writes: register and deregister nodes, services and checks.

Every write skips records whose stored bytes would not change, so agents that re-sync an
unchanged registration (anti-entropy every minute, on every node) never bump an index.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from waypost.state import schema
from waypost.state.model import HealthCheck, Node, NodeService
from waypost.state.state import State, TxnPlan
from waypost.store.base import Compare, Delete, Op, Put

__all__ = ["CatalogError", "check_on", "deregister", "guard", "keep_node_id", "register"]


class CatalogError(ValueError):
    """A registration that Consul would refuse; the message is Consul's."""


def guard(key: str, current: msgspec.Struct | None) -> Compare:
    """Holds only if the store still has what the indexes showed us."""
    if current is None:
        return Compare(key, "version", "=", 0)
    return Compare(key, "mod", "=", current.ModifyIndex)  # type: ignore[attr-defined]


def _put_if_changed(
    key: str, record: msgspec.Struct, current: msgspec.Struct | None, compares: list[Compare], ops: list[Op]
) -> None:
    value = schema.encode(record)
    if current is not None and schema.encode(current) == value:
        return
    compares.append(guard(key, current))
    ops.append(Put(key, value))


def keep_node_id(node: Node, current: Node | None) -> Node:
    """An update that names no ID keeps the node's: agents re-register without one, and a
    node's ID must not flap between registrations."""
    if current is not None and not node.ID:
        return msgspec.structs.replace(node, ID=current.ID)
    return node


def check_on(check: HealthCheck, node: str, owner: NodeService | None) -> HealthCheck:
    """``check`` as stored on ``node``: a service's check carries that service's name and
    tags, so health reads need not join the two."""
    if owner is not None:
        check = msgspec.structs.replace(check, ServiceName=owner.Service, ServiceTags=list(owner.Tags))
    return msgspec.structs.replace(check, Node=node)


async def register(
    state: State,
    node: Node,
    services: Sequence[NodeService] = (),
    checks: Sequence[HealthCheck] = (),
    *,
    skip_node_update: bool = False,
) -> int:
    """Register ``node`` with services and checks atomically; returns the resulting index."""

    def plan() -> TxnPlan | None:
        idx = state.indexes
        compares: list[Compare] = []
        ops: list[Op] = []
        current_node = idx.nodes.get(node.Node)
        if not (skip_node_update and current_node is not None):
            stored = keep_node_id(node, current_node)
            _put_if_changed(schema.NODES.key(node.Node), stored, current_node, compares, ops)
        on_node = dict(idx.services.get(node.Node, {}))
        for svc in services:
            current = on_node.get(svc.ID)
            on_node[svc.ID] = svc
            _put_if_changed(schema.SERVICES.key(node.Node, svc.ID), svc, current, compares, ops)
        for chk in checks:
            owner = on_node.get(chk.ServiceID) if chk.ServiceID else None
            if chk.ServiceID and owner is None:
                raise CatalogError(f"Unknown service ID '{chk.ServiceID}' for check ID '{chk.CheckID}'")
            chk = check_on(chk, node.Node, owner)
            current_chk = idx.checks.get(node.Node, {}).get(chk.CheckID)
            _put_if_changed(schema.CHECKS.key(node.Node, chk.CheckID), chk, current_chk, compares, ops)
        return (compares, ops) if ops else None

    result = await state.write(plan)
    return result.revision if result is not None else state.indexes.revision


async def deregister(
    state: State, node: str, *, service_id: str | None = None, check_id: str | None = None
) -> int:
    """Consul's catalog deregister: a node with everything on it, or one service and its
    checks, or one check. Unknown targets are not an error, as in Consul."""

    def plan() -> TxnPlan | None:
        idx = state.indexes
        ops: list[Op] = []
        if service_id is None and check_id is None:
            if (
                node not in idx.nodes
                and node not in idx.services
                and node not in idx.checks
                and not idx.quarantined_under(
                    schema.NODES.key(node), schema.SERVICES.key(node, ""), schema.CHECKS.key(node, "")
                )
            ):
                return None
            ops = [
                Delete(schema.SERVICES.key(node, ""), prefix=True),
                Delete(schema.CHECKS.key(node, ""), prefix=True),
                Delete(schema.NODES.key(node)),
            ]
            # A node's coordinates go with it, as in Consul, so a later node of that name starts afresh.
            ops += [
                Delete(schema.COORDINATES.key(key)) for key, c in idx.coordinates.items() if c.Node == node
            ]
            return [], ops
        if service_id is not None:
            if service_id not in idx.services.get(node, {}):
                return None
            ops.append(Delete(schema.SERVICES.key(node, service_id)))
            ops.extend(
                Delete(schema.CHECKS.key(node, c.CheckID))
                for c in idx.checks.get(node, {}).values()
                if c.ServiceID == service_id
            )
        if check_id is not None:
            if check_id not in idx.checks.get(node, {}):
                return None if not ops else ([], ops)
            ops.append(Delete(schema.CHECKS.key(node, check_id)))
        return [], ops

    result = await state.write(plan)
    return result.revision if result is not None else state.indexes.revision
