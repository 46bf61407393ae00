"""What a lean client agent answers itself and what it relays, and what it fills in on the
way as Consul's client agents do before their RPC (the scenarios: tests/e2e/test_lean_client.py)."""

from __future__ import annotations

import json

import pytest

from waypost.agent.lean import as_forwarded, forwarded, replica_scope, uncached
from waypost.api.common import HTTPError
from waypost.api.http import Request
from waypost.api.routes import ROUTES
from waypost.state import schema
from waypost.store import wire


@pytest.mark.parametrize(
    ("path", "relayed"),
    [
        ("/v1/catalog/services", True),
        ("/v1/kv/a/b", True),
        ("/v1/acl/token/self", True),
        ("/v1/stream/health/service/web", True),
        ("/v1/agent/connect/authorize", True),
        ("/v1/agent/services", False),
        ("/v1/agent/connect/ca/leaf/web", False),
        ("/v1/internal/wan/exchange", False),
        ("/", False),
        ("/ui/services", False),
    ],
)
def test_what_a_client_agent_relays(path: str, relayed: bool) -> None:
    assert forwarded(path) is relayed


def test_every_registry_route_is_relayed_and_every_agent_route_is_not() -> None:
    for _, path, _ in ROUTES:
        if path.startswith("/v1/agent/") and path != "/v1/agent/connect/authorize":
            assert not forwarded(path), path
        elif path.startswith("/v1/") and not path.startswith("/v1/internal/wan/"):
            assert forwarded(path), path


def _request(method: str, path: str, query: str = "", body: bytes = b"") -> Request:
    req = Request(method, path, query, {}, body)
    req.remote = "192.0.2.7:51000"
    return req


def test_a_session_naming_no_node_is_the_agents() -> None:
    sent = as_forwarded(_request("PUT", "/v1/session/create", body=b'{"Name": "x", "node": ""}'), "edge")
    assert json.loads(sent.body) == {"Name": "x", "Node": "edge"}
    named = b'{"Node": "other"}'
    assert as_forwarded(_request("PUT", "/v1/session/create", body=named), "edge").body == named
    assert json.loads(as_forwarded(_request("PUT", "/v1/session/create"), "edge").body) == {"Node": "edge"}
    for bad in (b"[1]", b"{not json"):  # the server refuses these with its own message
        assert as_forwarded(_request("PUT", "/v1/session/create", body=bad), "edge").body == bad


def test_near_agent_is_the_agents_node_and_the_callers_address_travels() -> None:
    sent = as_forwarded(_request("GET", "/v1/catalog/nodes", "near=_agent&filter=a%20b"), "edge")
    assert sent.query["near"] == ["edge"]
    assert sent.arg("filter") == "a b"
    assert sent.headers["x-forwarded-for"] == "192.0.2.7"
    kept = _request("GET", "/v1/health/service/web", "near=other")
    kept.headers["x-forwarded-for"] = "198.51.100.1"
    sent = as_forwarded(kept, "edge")
    assert (sent.raw_query, sent.headers["x-forwarded-for"]) == ("near=other", "198.51.100.1")


def test_a_simple_fetch_for_the_clients_cache_asks_the_server_uncached() -> None:
    req = Request("GET", "/v1/catalog/datacenters", "cached&dc=dc1", {"cache-control": "max-age=5"}, b"")
    assert uncached(req) is req
    assert (req.raw_query, req.query, req.headers) == ("dc=dc1", {"dc": ["dc1"]}, {})
    with pytest.raises(HTTPError, match="Cannot specify"):
        uncached(Request("GET", "/v1/query/q/execute", "cached&consistent", {}, b""))


def test_the_replica_holds_its_own_node_and_the_cluster_tables_only() -> None:
    scope = replica_scope("edge")
    assert len(scope) <= wire.MAX_TXN_OPS
    held = [
        schema.NODES.key("edge"), schema.SERVICES.key("edge", "web"), schema.CHECKS.key("edge", "serfHealth"),
        schema.MEMBERS.key("s1"), schema.LIVENESS.key("s1"), schema.LEADER_KEY, schema.ACL_TOKENS.key("t"),
        schema.CONNECT_CA_KEY, schema.COORDINATES.key("edge:"),
    ]  # fmt: skip
    assert all(wire.in_scope(key, scope) for key in held)
    not_held = [
        schema.NODES.key("edge-2"), schema.SERVICES.key("other", "web"), schema.KVS.key("k"),
        schema.SESSIONS.key("s"), schema.PREPARED_QUERIES.key("q"), schema.INTENTIONS.key("a/b"),
        schema.VIRTUAL_IPS.key("web"), schema.EVENTS.key("e"), schema.GRAVEYARD_KEY,
    ]  # fmt: skip
    assert not any(wire.in_scope(key, scope) for key in not_held)
