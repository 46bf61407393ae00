"""Secret to authorizer: the token's policies, roles and identities compiled once and cached.

The cache is keyed by a digest of the secret, so looking a secret up never compares it
byte by byte against stored ones (the digest comparison leaks nothing usable about the
secret); the configured secrets, which are not in the store, are checked with
``hmac.compare_digest``. Any write to the token, policy or role tables empties the cache,
so a deleted policy or token stops working as soon as the change reaches this agent.
An expiring token's cached entry carries its expiry, checked on every request.

A client agent's tables are a copy that only stays current while it reaches a server.
Consul's client agents cache what servers answered for ``token_ttl`` and apply
``acl.down_policy`` once an entry is older than that and no server answers; here an
entry's age is the time since the secret was last resolved while the copy was current,
and the same policy applies past ``token_ttl``: ``allow`` and ``deny`` answer for every
secret, ``extend-cache`` and ``async-cache`` keep using what was resolved before (the
copy still holds it) and deny a secret never resolved. The agent recovery token is
always resolved locally, as Consul's is.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import datetime

from waypost.acl.authorizer import Authorizer
from waypost.acl.rules import Rules, RulesError, parse_rules
from waypost.config.model import ACL
from waypost.state.indexes import Indexes
from waypost.state.model import ACLLink, ACLNodeIdentity, ACLServiceIdentity, ACLToken

__all__ = [
    "ANONYMOUS_ID",
    "ANONYMOUS_SECRET",
    "DOWN_ACCESSOR",
    "MANAGEMENT_ID",
    "MANAGEMENT_RULES",
    "Resolver",
    "expiry_of",
    "node_identity_rules",
    "service_identity_rules",
]

MANAGEMENT_ID = "00000000-0000-0000-0000-000000000001"
ANONYMOUS_ID = "00000000-0000-0000-0000-000000000002"
ANONYMOUS_SECRET = "anonymous"
MANAGEMENT_RULES = """
acl = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
keyring = "write"
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}"""
"""The global-management policy's rules as Consul shows them; the policy itself is
resolved to a managing authorizer by its fixed ID."""

DOWN_ACCESSOR = "primary-dc-down"
"""The AccessorID Consul's denials name when the down policy answered."""
_DOWN = {
    "allow": Authorizer(default="allow", accessor=DOWN_ACCESSOR),
    "deny": Authorizer(default="deny", accessor=DOWN_ACCESSOR),
}
"""Consul's AllowAll and DenyAll (neither grants ACL management); the cache-extending
policies fall back to denial for a secret they never resolved."""

_TABLES = (("acl-tokens",), ("acl-policies",), ("acl-roles",))
"""The watch topics of the tables a token's permissions come from."""


def service_identity_rules(identity: ACLServiceIdentity) -> Rules:
    """Consul's service identity template: write on the service and its sidecar, read on
    every service and node (for discovery)."""
    name = identity.ServiceName
    return parse_rules(
        f'service "{name}" {{ policy = "write" }}\nservice "{name}-sidecar-proxy" {{ policy = "write" }}\n'
        'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }'
    )


def node_identity_rules(identity: ACLNodeIdentity) -> Rules:
    return parse_rules(
        f'node "{identity.NodeName}" {{ policy = "write" }}\nservice_prefix "" {{ policy = "read" }}'
    )


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def expiry_of(token: ACLToken) -> float | None:
    """Seconds since the epoch; an unreadable time (a hand-edited record) counts as expired."""
    if not token.ExpirationTime:
        return None
    try:
        return datetime.fromisoformat(token.ExpirationTime).timestamp()
    except ValueError:
        return 0.0


class Resolver:
    """Resolves secrets against one agent's indexes; ``clock`` is wall time (expiry is a date).
    ``reachable`` says whether the indexes are current (always, on a server)."""

    def __init__(
        self,
        config: ACL,
        node_name: str,
        datacenter: str,
        clock: Callable[[], float] = time.time,
        reachable: Callable[[], bool] = lambda: True,
    ) -> None:
        self.config = config
        self.node_name = node_name
        self.datacenter = datacenter
        self.clock = clock
        self.reachable = reachable
        self._fresh: dict[bytes, float] = {}
        """When each secret last resolved (to a live token) while the indexes were current."""
        self._generation: tuple[int, ...] = ()
        self._revision = -1
        self._indexes: Indexes | None = None
        self._by_digest: dict[bytes, ACLToken] = {}
        self._cache: dict[bytes, tuple[Authorizer, float | None]] = {}
        self._rules: dict[str, tuple[int, Rules]] = {}
        self._recovery = _digest(config.tokens.agent_recovery) if config.tokens.agent_recovery else None

    def token(self, idx: Indexes, secret: str) -> ACLToken | None:
        """The live (unexpired) stored token with this secret."""
        self._refresh(idx)
        token = self._by_digest.get(_digest(secret or ANONYMOUS_SECRET))
        if token is None:
            return None
        expiry = expiry_of(token)
        if expiry is not None and self.clock() >= expiry:
            return None
        return token

    def authorizer(self, idx: Indexes, secret: str) -> Authorizer | None:
        """The secret's permissions, or None for a secret that names no live token (Consul's
        "ACL not found"). An empty secret is the anonymous token."""
        self._refresh(idx)
        key = _digest(secret or ANONYMOUS_SECRET)
        if self._is_recovery(key) or self.reachable():
            authz = self._resolve(idx, key, secret)
            if authz is not None:
                self._fresh[key] = self.clock()
            return authz
        policy = self.config.down_policy
        fresh = self._fresh.get(key)
        if fresh is not None and (
            self.clock() - fresh <= self.config.token_ttl.seconds or policy not in _DOWN
        ):
            return self._resolve(idx, key, secret)
        return _DOWN.get(policy, _DOWN["deny"])

    def _resolve(self, idx: Indexes, key: bytes, secret: str) -> Authorizer | None:
        cached = self._cache.get(key)
        if cached is not None:
            authz, expiry = cached
            if expiry is None or self.clock() < expiry:
                return authz
            return None
        if self._is_recovery(key):
            rules = parse_rules(
                f'agent "{self.node_name}" {{ policy = "write" }}\nnode_prefix "" {{ policy = "read" }}'
            )
            authz = Authorizer([rules], default="deny", accessor="agent-recovery")
            self._cache[key] = (authz, None)
            return authz
        token = self._by_digest.get(key)
        if token is None:
            if secret:
                return None
            authz = Authorizer(default=self.config.default_policy, accessor=ANONYMOUS_ID)
            self._cache[key] = (authz, None)
            return authz
        expiry = expiry_of(token)
        authz = self._compile(idx, token)
        self._cache[key] = (authz, expiry)
        return authz if expiry is None or self.clock() < expiry else None

    def _is_recovery(self, key: bytes) -> bool:
        return self._recovery is not None and hmac.compare_digest(key, self._recovery)

    def _refresh(self, idx: Indexes) -> None:
        if idx is self._indexes and idx.revision == self._revision:
            return  # nothing at all was written since the last look
        self._revision = idx.revision
        index = idx.topics.index
        generation = (index(_TABLES[0]), index(_TABLES[1]), index(_TABLES[2]))
        if idx is self._indexes and generation == self._generation:
            return
        self._indexes, self._generation = idx, generation
        self._cache.clear()
        self._by_digest = {_digest(t.SecretID): t for t in idx.acl_tokens.values()}
        self._fresh = {key: when for key, when in self._fresh.items() if key in self._by_digest}
        self._rules = {pid: rules for pid, rules in self._rules.items() if pid in idx.acl_policies}

    def _compile(self, idx: Indexes, token: ACLToken) -> Authorizer:
        policies: list[ACLLink] = list(token.Policies or ())
        services = list(token.ServiceIdentities or ())
        nodes = list(token.NodeIdentities or ())
        for link in token.Roles or ():
            role = idx.acl_roles.get(link.ID)
            if role is None:
                continue
            policies.extend(role.Policies or ())
            services.extend(role.ServiceIdentities or ())
            nodes.extend(role.NodeIdentities or ())
        if any(p.ID == MANAGEMENT_ID for p in policies):
            return Authorizer(manage=True, accessor=token.AccessorID)
        rules = [self._policy_rules(idx, p.ID) for p in policies]
        rules.extend(service_identity_rules(s) for s in services)
        rules.extend(node_identity_rules(n) for n in nodes if n.Datacenter in ("", self.datacenter))
        found = [r for r in rules if r is not None]
        return Authorizer(found, default=self.config.default_policy, accessor=token.AccessorID)

    def _policy_rules(self, idx: Indexes, policy_id: str) -> Rules | None:
        """A stored policy's parsed rules, re-parsed only when the policy changed; a policy
        deleted since the token named it grants nothing."""
        policy = idx.acl_policies.get(policy_id)
        if policy is None:
            return None
        cached = self._rules.get(policy_id)
        if cached is not None and cached[0] == policy.ModifyIndex:
            return cached[1]
        try:
            rules = parse_rules(policy.Rules)
        except RulesError:
            rules = Rules()
        self._rules[policy_id] = (policy.ModifyIndex, rules)
        return rules
