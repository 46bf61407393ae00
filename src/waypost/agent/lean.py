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

from urllib.parse import parse_qsl, urlencode

import orjson

from waypost.api.common import parse_consistency
from waypost.api.http import Request
from waypost.state import schema

__all__ = ["as_forwarded", "forwarded", "replica_scope", "uncached"]

_SERVED_BY_SERVERS = ("/v1/agent/connect/authorize",)
"""Agent endpoints that read the registry (intentions), which the agent does not hold."""

_AGENT_LOCAL = ("/v1/agent/", "/v1/internal/wan/")
"""The agent's own: its endpoints, and its copy of the WAN view (``wan.federation``)."""


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
    return not path.startswith(_AGENT_LOCAL) or path.startswith(_SERVED_BY_SERVERS)


def as_forwarded(req: Request, node: str) -> Request:
    """``req`` as a client agent called ``node`` sends it on, with what Consul's client
    agents fill in before their RPC: the agent's node for ``near=_agent`` and for a session
    that names no node, and the caller's address for ``_ip`` (``X-Forwarded-For``)."""
    if req.raw_query and req.arg("near") == "_agent":
        pairs = [(k, node if k == "near" and v == "_agent" else v) for k, v in parse_qsl(req.raw_query, True)]
        req.raw_query = urlencode(pairs)
        req.query["near"] = [node]
    if req.path == "/v1/session/create" and req.method == "PUT":
        req.body = _with_node(req.body, node)
    caller = req.remote.rpartition(":")[0].strip("[]")
    if caller and "x-forwarded-for" not in req.headers:
        req.headers["x-forwarded-for"] = caller
    return req


def uncached(req: Request) -> Request:
    """``req`` as a client agent fetches it for its own simple cache: without ``?cached``
    and ``Cache-Control``, which this agent has applied, so a server answers it fresh, as
    Consul's servers answer a client agent's RPC (``?cached`` with ``?consistent`` is still
    refused, here)."""
    if "cached" not in req.raw_query:
        return req
    parse_consistency(req)
    req.query.pop("cached", None)
    req.raw_query = urlencode([(k, v) for k, v in parse_qsl(req.raw_query, True) if k != "cached"])
    req.headers.pop("cache-control", None)
    return req


def _with_node(body: bytes, node: str) -> bytes:
    """A session's body naming ``node`` unless it names one; anything but a JSON object is
    left for the server to refuse with its own message."""
    try:
        decoded = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        return body
    if not isinstance(decoded, dict) or any(k.lower() == "node" and v for k, v in decoded.items()):
        return body
    decoded = {k: v for k, v in decoded.items() if k.lower() != "node"}
    return orjson.dumps({**decoded, "Node": node})
