"""Rule precedence, table-driven: exact beats prefix, longest prefix wins, deny wins a tie,
list grants read and list, and the default applies only where nothing matches."""

from __future__ import annotations

import pytest

from waypost.acl.authorizer import ALLOW_ALL, DENY_ALL, MANAGE_ALL, Authorizer
from waypost.acl.rules import parse_rules

POLICY_A = """
key_prefix "" { policy = "read" }
key_prefix "app/" { policy = "write" }
key_prefix "app/secret/" { policy = "deny" }
key "app/secret/public" { policy = "read" }
key_prefix "lists/" { policy = "list" }
service_prefix "" { policy = "read" }
service "db" { policy = "write" }
service_prefix "internal-" { policy = "deny" }
node_prefix "web" { policy = "write" }
node "web-locked" { policy = "read" }
session_prefix "" { policy = "read" }
session "n1" { policy = "write" }
operator = "read"
"""

POLICY_B = """
service "db" { policy = "deny" }
key "app/config" { policy = "read" }
node_prefix "web" { policy = "read" }
"""

CASES = [
    # kind, name, need, expected
    ("key", "other", "read", True),
    ("key", "other", "write", False),
    ("key", "app/x", "write", True),
    ("key", "app/secret/x", "read", False),
    ("key", "app/secret/public", "read", True),
    ("key", "app/secret/public", "write", False),
    ("key", "app/config", "write", False),  # prefix write in A, exact read in B: exact wins
    ("key", "lists/a", "list", True),
    ("key", "lists/a", "read", True),
    ("key", "lists/a", "write", False),
    ("key", "other", "list", False),
    ("service", "web", "read", True),
    ("service", "web", "write", False),
    ("service", "db", "write", False),  # write in A, deny in B: deny wins
    ("service", "db", "read", False),
    ("service", "internal-api", "read", False),
    ("node", "web1", "write", True),  # write in A and read in B for the same prefix: write wins
    ("node", "web-locked", "write", False),
    ("node", "web-locked", "read", True),
    ("node", "db1", "read", False),
    ("session", "n1", "write", True),
    ("session", "n2", "write", False),
    ("session", "n2", "read", True),
    ("operator", "", "read", True),
    ("operator", "", "write", False),
    ("acl", "", "read", False),
    ("event", "deploy", "read", False),
]


@pytest.mark.parametrize(("kind", "name", "need", "expected"), CASES)
def test_precedence(kind: str, name: str, need: str, expected: bool) -> None:
    authz = Authorizer([parse_rules(POLICY_A), parse_rules(POLICY_B)])
    assert authz.allowed(kind, name, need) is expected
    assert authz.allowed(kind, name, need) is expected  # the memoised answer agrees


def test_default_applies_only_where_nothing_matches() -> None:
    authz = Authorizer([parse_rules('key_prefix "x/" { policy = "deny" }')], default="allow")
    assert authz.allowed("key", "y", "write")
    assert not authz.allowed("key", "x/1", "read")
    assert not authz.allowed("acl", "", "read")  # a default never grants ACL management


def test_static_authorizers() -> None:
    assert ALLOW_ALL.allowed("service", "x", "write")
    assert not ALLOW_ALL.allowed("acl", "", "write")
    assert not DENY_ALL.allowed("service", "x", "read")
    assert MANAGE_ALL.allowed("acl", "", "write")


def test_write_prefix_needs_write_on_everything_below() -> None:
    authz = Authorizer([parse_rules(POLICY_A)])
    assert not authz.write_prefix("key", "app/")  # app/secret/ is denied below it
    assert authz.write_prefix("key", "app/other/")
    assert not authz.write_prefix("key", "")


def test_memo_is_bounded() -> None:
    authz = Authorizer([parse_rules('key_prefix "a" { policy = "read" }')])
    for i in range(10_000):
        authz.allowed("key", f"a{i}", "read")
    assert len(authz._trees["key"].memo) <= 4096
