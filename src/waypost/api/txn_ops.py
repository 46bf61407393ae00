"""The operations /v1/txn takes, as typed records, and the checks Consul runs on them
before a transaction reaches its state store.

Every operation is decoded into one of these before anything runs (``txn``), and
``precheck`` refuses the whole transaction for the failures Consul finds up front
(a missing key or node name, a malformed node ID, a key under lock-delay).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from waypost.gostrconv import go_quote
from waypost.state.model import HealthCheck, Node, NodeService

__all__ = ["CheckOp", "KVOp", "NodeOp", "ServiceOp", "SessionOp", "TxnOp", "is_write", "precheck"]


@dataclass(frozen=True, slots=True)
class KVOp:
    verb: str
    key: str
    value: bytes = b""
    flags: int = 0
    index: int = 0
    session: str = ""


@dataclass(frozen=True, slots=True)
class NodeOp:
    verb: str
    node: Node
    index: int = 0


@dataclass(frozen=True, slots=True)
class ServiceOp:
    verb: str
    node: str
    service: NodeService
    index: int = 0


@dataclass(frozen=True, slots=True)
class CheckOp:
    verb: str
    check: HealthCheck
    index: int = 0


@dataclass(frozen=True, slots=True)
class SessionOp:
    verb: str
    session: str


TxnOp = KVOp | NodeOp | ServiceOp | CheckOp | SessionOp

_KV_WRITES = frozenset(("set", "cas", "lock", "unlock", "delete", "delete-tree", "delete-cas"))
_UUID_SHAPE = (8, 4, 4, 4, 12)


def is_write(op: TxnOp) -> bool:
    """Consul's split: a transaction with no write is answered as a read, without Raft."""
    if isinstance(op, KVOp):
        return op.verb in _KV_WRITES
    return op.verb != "get"


def _uuid_error(value: str) -> str | None:
    """Go's ``uuid.ParseUUID`` message for a malformed node ID, or None for a valid one."""
    if len(value) != 36:
        return "uuid string is wrong length"
    parts = value.split("-")
    if [len(p) for p in parts] != list(_UUID_SHAPE) or not all(
        c in "0123456789abcdefABCDEF" for p in parts for c in p
    ):
        return "uuid is improperly formatted"
    return None


def precheck(ops: Sequence[TxnOp], lock_delayed: Callable[[str], bool]) -> list[tuple[int, str]]:
    """Consul's checks before a transaction reaches the state store (its ``preCheck``):
    failures are reported per operation, with 409, and nothing runs."""
    errors: list[tuple[int, str]] = []
    for i, op in enumerate(ops):
        what = None
        if isinstance(op, KVOp):
            if not op.key and op.verb != "delete-tree":
                what = "Must provide key"
            elif op.verb == "lock" and lock_delayed(op.key):
                what = f"failed to lock key {go_quote(op.key)} due to lock delay"
        elif isinstance(op, NodeOp) and op.verb != "get":
            name, node_id = op.node.Node, op.node.ID
            if not name:
                what = "Must provide node"
            elif node_id and (bad := _uuid_error(node_id)):
                what = f"Bad node ID: {bad}"
            elif "/" in name:
                what = f'Invalid node name "{name}": "/" is not allowed'
        elif isinstance(op, ServiceOp) and op.verb != "get" and not op.service.Service:
            what = "Must provide service name (Service.Service) when service ID is provided"
        if what is not None:
            errors.append((i, what))
    return errors
