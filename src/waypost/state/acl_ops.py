"""ACL writes: bootstrap, the built-in policy and tokens, and token/policy/role upserts.

Names are unique among policies and among roles, as Consul's state store enforces; the
check is guarded by the holder's revision so two concurrent writers of one name cannot
both win.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from waypost.acl.resolve import ANONYMOUS_ID, ANONYMOUS_SECRET, MANAGEMENT_ID, MANAGEMENT_RULES
from waypost.state import schema
from waypost.state.catalog_ops import guard
from waypost.state.model import ACLBootstrap, ACLLink, ACLPolicy, ACLRole, ACLToken
from waypost.state.state import State, TxnPlan
from waypost.store.base import Compare, Delete, Put

__all__ = [
    "ACLConflictError",
    "bootstrap",
    "content_hash",
    "delete_record",
    "ensure_builtins",
    "now_rfc3339",
    "set_policy",
    "set_role",
    "set_token",
]


class ACLConflictError(ValueError):
    """A write Consul refuses with 400 (a taken name, a built-in that may not change)."""


def content_hash(record: Any) -> bytes:
    """Consul's ``Hash``: a digest of what the record grants, so clients can tell a change."""
    content = msgspec.structs.replace(record, Hash=b"", CreateIndex=0, ModifyIndex=0)
    return hashlib.blake2b(msgspec.msgpack.encode(content), digest_size=32).digest()


def now_rfc3339(seconds: float | None = None) -> str:
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def management_token(secret: str, description: str) -> ACLToken:
    token = ACLToken(
        AccessorID=str(uuid.uuid4()),
        SecretID=secret,
        Description=description,
        Policies=[ACLLink(ID=MANAGEMENT_ID, Name="global-management")],
        CreateTime=now_rfc3339(),
    )
    token.Hash = content_hash(token)
    return token


async def ensure_builtins(state: State, initial_management: str) -> None:
    """The global-management policy, the anonymous token and the configured initial
    management token, written once by whichever server gets there first."""
    idx = state.indexes
    if MANAGEMENT_ID not in idx.acl_policies:
        policy = ACLPolicy(
            ID=MANAGEMENT_ID,
            Name="global-management",
            Description="Builtin Policy that grants unlimited access",
            Rules=MANAGEMENT_RULES,
        )
        policy.Hash = content_hash(policy)
        await _create(state, schema.ACL_POLICIES.key(MANAGEMENT_ID), policy)
    if ANONYMOUS_ID not in idx.acl_tokens:
        anonymous = ACLToken(
            AccessorID=ANONYMOUS_ID,
            SecretID=ANONYMOUS_SECRET,
            Description="Anonymous Token",
            CreateTime=now_rfc3339(),
        )
        await _create(state, schema.ACL_TOKENS.key(ANONYMOUS_ID), anonymous)
    if initial_management and not any(t.SecretID == initial_management for t in idx.acl_tokens.values()):
        token = management_token(initial_management, "Initial Management Token")
        await _create(state, schema.ACL_TOKENS.key(token.AccessorID), token)
        await _create(state, schema.ACL_BOOTSTRAP_KEY, ACLBootstrap())


async def _create(state: State, key: str, record: Any) -> None:
    value = schema.encode(record)

    def plan() -> TxnPlan | None:
        return [Compare(key, "version", "=", 0)], [Put(key, value)]

    await state.write(lambda: None if _exists(state, key) else plan())


def _exists(state: State, key: str) -> bool:
    for table, records in (
        (schema.ACL_POLICIES, state.indexes.acl_policies),
        (schema.ACL_TOKENS, state.indexes.acl_tokens),
        (schema.ACL_BOOTSTRAP, state.indexes.acl_bootstrap),
    ):
        if key.startswith(table.prefix):
            return key[len(table.prefix) :] in records
    return False


async def bootstrap(state: State) -> ACLToken | int:
    """The new management token, or the reset index when the cluster is bootstrapped."""
    token = management_token(str(uuid.uuid4()), "Bootstrap Token (Global Management)")
    key = schema.ACL_TOKENS.key(token.AccessorID)
    done: list[int] = []

    def plan() -> TxnPlan | None:
        current = state.indexes.acl_bootstrap.get("state")
        if current is not None:
            done.append(current.ModifyIndex)
            return None
        return [Compare(schema.ACL_BOOTSTRAP_KEY, "version", "=", 0)], [
            Put(schema.ACL_BOOTSTRAP_KEY, schema.encode(ACLBootstrap())),
            Put(key, schema.encode(token)),
        ]

    await state.write(plan)
    if done:
        return done[-1]
    return state.indexes.acl_tokens[token.AccessorID]


async def set_token(state: State, token: ACLToken) -> ACLToken:
    key = schema.ACL_TOKENS.key(token.AccessorID)
    value = schema.encode(token)

    def plan() -> TxnPlan | None:
        current = state.indexes.acl_tokens.get(token.AccessorID)
        for other in state.indexes.acl_tokens.values():
            if other.SecretID == token.SecretID and other.AccessorID != token.AccessorID:
                raise ACLConflictError("Invalid Token: SecretID is already in use")
        return [guard(key, current)], [Put(key, value)]

    await state.write(plan)
    return state.indexes.acl_tokens[token.AccessorID]


async def set_policy(state: State, policy: ACLPolicy) -> ACLPolicy:
    await _set_named(state, schema.ACL_POLICIES, "acl_policies", policy, "Policy")
    return state.indexes.acl_policies[policy.ID]


async def set_role(state: State, role: ACLRole) -> ACLRole:
    await _set_named(state, schema.ACL_ROLES, "acl_roles", role, "Role")
    return state.indexes.acl_roles[role.ID]


async def _set_named(state: State, table: schema.Table[Any], attr: str, record: Any, what: str) -> None:
    """``attr`` names the index the table feeds; read afresh each attempt, since a re-list
    replaces the indexes."""
    key = table.key(record.ID)
    value = schema.encode(record)

    def plan() -> TxnPlan | None:
        records: dict[str, Any] = getattr(state.indexes, attr)
        current = records.get(record.ID)
        compares = [guard(key, current)]
        for other in records.values():
            if other.Name == record.Name and other.ID != record.ID:
                raise ACLConflictError(f"Invalid {what}: A {what} with Name {record.Name!r} already exists")
        return compares, [Put(key, value)]

    await state.write(plan)


async def delete_record(state: State, table: schema.Table[Any], record_id: str) -> None:
    key = table.key(record_id)
    await state.write(lambda: ([], [Delete(key)]))
