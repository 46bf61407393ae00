"""What a secondary writes to match the primary: changed records, deletions of what the
primary no longer has, and never its own local tokens."""

from __future__ import annotations

from waypost.state import schema
from waypost.state.indexes import Indexes
from waypost.state.model import ACLPolicy, ACLRole, ACLToken
from waypost.store.base import Delete, Put
from waypost.wan.acl_replication import Replicated, changes, replicated


def policy(pid: str, rules: str = "", index: int = 0) -> ACLPolicy:
    return ACLPolicy(ID=pid, Name=f"name-{pid}", Rules=rules, CreateIndex=index, ModifyIndex=index)


def token(accessor: str, local: bool = False) -> ACLToken:
    return ACLToken(AccessorID=accessor, SecretID=f"secret-{accessor}", Local=local)


def keys(ops: list[Put | Delete]) -> list[tuple[str, str]]:
    return sorted((type(op).__name__, op.key) for op in ops)


def test_the_primary_replicates_every_policy_and_role_and_only_its_global_tokens() -> None:
    idx = Indexes()
    idx.acl_policies = {"p1": policy("p1")}
    idx.acl_roles = {"r1": ACLRole(ID="r1", Name="role")}
    idx.acl_tokens = {"g": token("g"), "l": token("l", local=True)}
    out = replicated(idx)
    assert ([p.ID for p in out.Policies], [r.ID for r in out.Roles], [t.AccessorID for t in out.Tokens]) == (
        ["p1"], ["r1"], ["g"],
    )  # fmt: skip


def test_a_secondary_writes_only_the_differences_and_keeps_its_local_tokens() -> None:
    idx = Indexes()
    idx.acl_policies = {
        "same": policy("same", "a", index=7),
        "old": policy("old", "x"),
        "gone": policy("gone"),
    }
    idx.acl_tokens = {"kept": token("kept"), "stale": token("stale"), "mine": token("mine", local=True)}
    source = Replicated(
        Policies=[policy("same", "a", index=99), policy("old", "y"), policy("new")],
        Roles=[ACLRole(ID="r1", Name="role")],
        Tokens=[token("kept"), token("fresh")],
    )
    ops = changes(idx, source)
    assert keys(ops) == sorted([
        ("Delete", schema.ACL_POLICIES.key("gone")),
        ("Put", schema.ACL_POLICIES.key("old")),
        ("Put", schema.ACL_POLICIES.key("new")),
        ("Put", schema.ACL_ROLES.key("r1")),
        ("Delete", schema.ACL_TOKENS.key("stale")),
        ("Put", schema.ACL_TOKENS.key("fresh")),
    ])  # fmt: skip
    written = next(op for op in ops if isinstance(op, Put) and op.key == schema.ACL_POLICIES.key("old"))
    assert schema.ACL_POLICIES.decode(written.value, 1, 1).Rules == "y"
    assert (
        changes(
            idx, Replicated(Policies=list(idx.acl_policies.values()), Tokens=[token("kept"), token("stale")])
        )
        == []
    )
