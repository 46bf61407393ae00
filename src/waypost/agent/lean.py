"""What a client agent keeps and what it asks a server for, as Consul's client agents do.

A client agent holds only what it needs to run itself: the LAN membership, liveness and
the leader (to find and fail over across servers, and for ``agent/members``), the ACL
tables (to resolve tokens for its own endpoints and DNS, and for ``acl.down_policy``),
the Connect CA's public roots (to issue its services' leaf certificates), and its own
node's catalog rows and coordinate (what anti-entropy diffs against). Nothing else of the
catalog is sent to it, so its memory and traffic do not grow with the cluster.

Every other read or write of the registry (catalog, health, KV, sessions, queries, ACL
endpoints, ...) is relayed to a server's HTTP API as it came, the caller's token with it,
and answered as the server answered; only ``/v1/agent/*`` is the agent's own, as in Consul.
"""

from __future__ import annotations

from waypost.state import schema

__all__ = ["forwarded", "replica_scope"]

_SERVED_BY_SERVERS = ("/v1/agent/connect/authorize",)
"""Agent endpoints that read the registry (intentions), which the agent does not hold."""


def replica_scope(node: str) -> list[str]:
    """The store keys a client agent called ``node`` replicates (``wire.in_scope``)."""
    return [
        schema.MEMBERS.prefix,
        schema.LIVENESS.prefix,
        schema.LEADER.prefix,
        schema.ACL_TOKENS.prefix,
        schema.ACL_POLICIES.prefix,
        schema.ACL_ROLES.prefix,
        schema.ACL_BOOTSTRAP.prefix,
        schema.CONNECT_CA.prefix,
        schema.NODES.key(node),
        schema.SERVICES.key(node, ""),
        schema.CHECKS.key(node, ""),
        schema.COORDINATES.key(f"{node}:"),
    ]


def forwarded(path: str) -> bool:
    """Whether a client agent relays a request for ``path`` (a routed public API path) to a
    server rather than answering it itself."""
    if not path.startswith("/v1/"):
        return False
    return not path.startswith("/v1/agent/") or path.startswith(_SERVED_BY_SERVERS)
