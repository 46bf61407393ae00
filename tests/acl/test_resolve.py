"""Secret to authorizer over real indexes fed by store events, with an injected clock:
expiry, identities, roles, the anonymous token, cache invalidation and the down policy."""

from __future__ import annotations

from typing import Any

import pytest

from waypost.acl.resolve import ANONYMOUS_ID, ANONYMOUS_SECRET, DOWN_ACCESSOR, MANAGEMENT_ID, Resolver
from waypost.config.model import ACL, ACLTokens, Duration
from waypost.state import schema
from waypost.state.indexes import Indexes
from waypost.state.model import ACLLink, ACLNodeIdentity, ACLPolicy, ACLRole, ACLServiceIdentity, ACLToken
from waypost.store.base import Event, EventType, KeyValue
from waypost.testing import ManualClock


class Feed:
    """Indexes fed the way the state machine feeds them: one store event per write."""

    def __init__(self) -> None:
        self.idx = Indexes()
        self.revision = 0

    def put(self, table: schema.Table[Any], key: str, record: Any) -> None:
        self.revision += 1
        kv = KeyValue(table.key(key), schema.encode(record), self.revision, self.revision, 1, 0)
        self.idx.apply([Event(EventType.PUT, kv)], self.revision)

    def delete(self, table: schema.Table[Any], key: str) -> None:
        self.revision += 1
        kv = KeyValue(table.key(key), b"", self.revision, self.revision, 0, 0)
        self.idx.apply([Event(EventType.DELETE, kv)], self.revision)


def _resolver(clock: ManualClock, default: str = "deny") -> Resolver:
    return Resolver(ACL(enabled=True, default_policy=default, tokens=ACLTokens()), "n1", "dc1", clock)


def test_an_expired_token_stops_at_its_expiry() -> None:
    feed, clock = Feed(), ManualClock(1_800_000_000.0)
    resolver = _resolver(clock)
    feed.put(
        schema.ACL_TOKENS,
        "a1",
        ACLToken(AccessorID="a1", SecretID="s1", ExpirationTime="2027-01-15T08:00:10Z"),
    )
    expiry = 1_800_000_010.0  # 2027-01-15T08:00:10Z
    clock.now = expiry - 0.5
    assert resolver.authorizer(feed.idx, "s1") is not None
    assert resolver.token(feed.idx, "s1") is not None
    clock.now = expiry
    assert resolver.authorizer(feed.idx, "s1") is None  # the cached authorizer too
    assert resolver.token(feed.idx, "s1") is None


def test_policy_role_and_identity_changes_take_effect() -> None:
    feed, clock = Feed(), ManualClock(1_800_000_000.0)
    resolver = _resolver(clock)
    feed.put(schema.ACL_POLICIES, "p1", ACLPolicy(ID="p1", Name="p1", Rules='key "k" { policy = "write" }'))
    feed.put(schema.ACL_ROLES, "r1", ACLRole(ID="r1", Name="r1", Policies=[ACLLink(ID="p1")]))
    feed.put(
        schema.ACL_TOKENS,
        "a1",
        ACLToken(
            AccessorID="a1",
            SecretID="s1",
            Roles=[ACLLink(ID="r1")],
            ServiceIdentities=[ACLServiceIdentity(ServiceName="web")],
            NodeIdentities=[ACLNodeIdentity(NodeName="n7", Datacenter="dc1")],
        ),
    )
    authz = resolver.authorizer(feed.idx, "s1")
    assert authz is not None
    assert authz.allowed("key", "k", "write")
    assert authz.allowed("service", "web", "write")
    assert authz.allowed("service", "web-sidecar-proxy", "write")
    assert authz.allowed("service", "db", "read")
    assert not authz.allowed("service", "db", "write")
    assert authz.allowed("node", "n7", "write")
    feed.put(schema.ACL_POLICIES, "p1", ACLPolicy(ID="p1", Name="p1", Rules='key "k" { policy = "read" }'))
    changed = resolver.authorizer(feed.idx, "s1")
    assert changed is not None
    assert not changed.allowed("key", "k", "write")
    feed.delete(schema.ACL_ROLES, "r1")
    gone = resolver.authorizer(feed.idx, "s1")
    assert gone is not None
    assert not gone.allowed("key", "k", "read")
    feed.delete(schema.ACL_TOKENS, "a1")
    assert resolver.authorizer(feed.idx, "s1") is None


def test_anonymous_and_management() -> None:
    feed, clock = Feed(), ManualClock(1_800_000_000.0)
    resolver = _resolver(clock, default="allow")
    anonymous = resolver.authorizer(feed.idx, "")
    assert anonymous is not None
    assert anonymous.allowed("service", "x", "write")
    assert not anonymous.allowed("acl", "", "read")
    feed.put(
        schema.ACL_POLICIES, "p", ACLPolicy(ID="p", Name="p", Rules='service_prefix "" { policy = "deny" }')
    )
    feed.put(
        schema.ACL_TOKENS,
        ANONYMOUS_ID,
        ACLToken(AccessorID=ANONYMOUS_ID, SecretID=ANONYMOUS_SECRET, Policies=[ACLLink(ID="p")]),
    )
    restricted = resolver.authorizer(feed.idx, "")
    assert restricted is not None
    assert not restricted.allowed("service", "x", "read")
    feed.put(
        schema.ACL_TOKENS,
        "m",
        ACLToken(AccessorID="m", SecretID="root", Policies=[ACLLink(ID=MANAGEMENT_ID)]),
    )
    manager = resolver.authorizer(feed.idx, "root")
    assert manager is not None
    assert manager.allowed("acl", "", "write")
    assert resolver.authorizer(feed.idx, "unknown") is None


def test_the_agent_recovery_token_manages_only_this_agent() -> None:
    resolver = Resolver(
        ACL(enabled=True, tokens=ACLTokens(agent_recovery="recover")),
        "n1",
        "dc1",
        ManualClock(1_800_000_000.0),
    )
    authz = resolver.authorizer(Indexes(), "recover")
    assert authz is not None
    assert authz.allowed("agent", "n1", "write")
    assert not authz.allowed("agent", "n2", "write")
    assert not authz.allowed("key", "x", "read")


def test_an_unreadable_expiration_counts_as_expired() -> None:
    feed, clock = Feed(), ManualClock(1_800_000_000.0)
    feed.put(schema.ACL_TOKENS, "a1", ACLToken(AccessorID="a1", SecretID="s1", ExpirationTime="garbage"))
    assert _resolver(clock).authorizer(feed.idx, "s1") is None


class Link:
    """Whether the resolver's indexes are current (a client agent reaching a server)."""

    def __init__(self) -> None:
        self.up = True

    def __call__(self) -> bool:
        return self.up


@pytest.mark.parametrize("policy", ["allow", "deny", "extend-cache", "async-cache"])
def test_the_down_policy_applies_past_token_ttl(policy: str) -> None:
    feed, clock, link = Feed(), ManualClock(1_800_000_000.0), Link()
    config = ACL(
        enabled=True,
        default_policy="deny",
        down_policy=policy,
        token_ttl=Duration("30s"),
        tokens=ACLTokens(agent_recovery="recover"),
    )
    resolver = Resolver(config, "n1", "dc1", clock, reachable=link)
    feed.put(schema.ACL_POLICIES, "p1", ACLPolicy(ID="p1", Name="p1", Rules='key "k" { policy = "read" }'))
    feed.put(schema.ACL_TOKENS, "a1", ACLToken(AccessorID="a1", SecretID="s1", Policies=[ACLLink(ID="p1")]))
    feed.put(schema.ACL_TOKENS, "a2", ACLToken(AccessorID="a2", SecretID="s2"))
    used = resolver.authorizer(feed.idx, "s1")
    assert used is not None
    link.up = False
    clock.now += 30
    assert resolver.authorizer(feed.idx, "s1") is used  # within token_ttl: the cached answer
    clock.now += 1
    past = resolver.authorizer(feed.idx, "s1")
    never_resolved = resolver.authorizer(feed.idx, "s2")
    assert past is not None
    assert never_resolved is not None
    if policy == "allow":
        assert past.allowed("key", "other", "write")
        assert never_resolved.allowed("service", "x", "write")
        assert not past.allowed("acl", "", "read")
    elif policy == "deny":
        assert not past.allowed("key", "k", "read")
        assert not never_resolved.allowed("key", "k", "read")
    else:
        assert past is used
        assert not never_resolved.allowed("key", "k", "read")
    if policy in ("allow", "deny"):
        assert past.accessor == DOWN_ACCESSOR
    recovery = resolver.authorizer(feed.idx, "recover")
    assert recovery is not None
    assert recovery.allowed("agent", "n1", "write")
    link.up = True
    assert resolver.authorizer(feed.idx, "s1") is used
