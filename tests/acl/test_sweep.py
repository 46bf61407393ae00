"""The ACL sweep: every route has an explicit rule, and against a default-deny agent every
route but Consul's open ones refuses (403, or 409 for /v1/txn) or filters without a token,
and works with a token whose policy grants exactly what the route needs."""

from __future__ import annotations

import http.client
import uuid
from typing import Any

import pytest

from acl_kit import ROOT, Caller
from waypost.api.acl_rules import NEEDS, OPEN
from waypost.api.routes import ROUTES
from waypost.testing import AgentProcess

NODE = "acl-node"
SID = "{sid}"
"""Replaced by a session created for the sweep."""


def _route_keys() -> set[tuple[str, str]]:
    return {("PUT" if m == "POST" else m, path) for methods, path, _ in ROUTES for m in methods}


def test_every_route_has_an_explicit_rule() -> None:
    routes = _route_keys()
    assert routes - set(NEEDS) == set(), "routes without an ACL rule"
    assert set(NEEDS) - routes == set(), "ACL rules for routes that do not exist"


def test_only_consuls_open_routes_are_open() -> None:
    opened = {key for key, need in NEEDS.items() if need is OPEN}
    assert opened == {
        ("GET", "/"),
        ("GET", "/ui/:path"),
        ("GET", "/v1/status/leader"),
        ("GET", "/v1/status/peers"),
        ("GET", "/v1/catalog/datacenters"),
        ("GET", "/v1/coordinate/datacenters"),
        ("PUT", "/v1/acl/bootstrap"),
    }


# (method, path, body, rules granting exactly it, kind): kind is "deny" for a refused
# route (403 without a token), "filter" for a filtered read, "txn" for /v1/txn.
NODE_READ = f'node "{NODE}" {{ policy = "read" }}'
NODE_WRITE = f'node "{NODE}" {{ policy = "write" }}'
WEB_READ = 'service "web" { policy = "read" }'
AGENT_READ = f'agent "{NODE}" {{ policy = "read" }}'
AGENT_WRITE = f'agent "{NODE}" {{ policy = "write" }}'
SESSION_WRITE = f'session "{NODE}" {{ policy = "write" }}'
COORD = {"Node": NODE, "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}}
CASES: list[tuple[str, str, Any, str, str]] = [
    ("GET", "/v1/agent/self", None, AGENT_READ, "deny"),
    ("GET", "/v1/agent/members", None, NODE_READ, "filter"),
    ("GET", "/v1/agent/host", None, 'operator = "read"', "deny"),
    ("GET", "/v1/agent/services", None, WEB_READ, "filter"),
    ("GET", "/v1/agent/service/web", None, WEB_READ, "deny"),
    ("GET", "/v1/agent/checks", None, NODE_READ, "filter"),
    ("GET", "/v1/agent/metrics", None, AGENT_READ, "deny"),
    ("GET", "/v1/agent/monitor", None, AGENT_READ, "deny"),
    ("GET", "/v1/agent/health/service/name/web", None, WEB_READ, "deny"),
    ("GET", "/v1/agent/health/service/id/web", None, WEB_READ, "deny"),
    ("PUT", "/v1/agent/service/register", {"Name": "api"}, 'service "api" { policy = "write" }', "deny"),
    ("PUT", "/v1/agent/service/register", {"service": "api"}, 'service "api" { policy = "write" }', "deny"),
    ("PUT", "/v1/agent/service/deregister/api", None, 'service "api" { policy = "write" }', "deny"),
    (
        "PUT",
        "/v1/agent/service/maintenance/web?enable=false",
        None,
        'service "web" { policy = "write" }',
        "deny",
    ),
    ("PUT", "/v1/agent/maintenance?enable=false", None, NODE_WRITE, "deny"),
    ("PUT", "/v1/agent/check/register", {"Name": "c2", "TTL": "30s"}, NODE_WRITE, "deny"),
    ("PUT", "/v1/agent/check/pass/c2", None, NODE_WRITE, "deny"),
    ("PUT", "/v1/agent/check/warn/c2", None, NODE_WRITE, "deny"),
    ("PUT", "/v1/agent/check/fail/c2", None, NODE_WRITE, "deny"),
    ("PUT", "/v1/agent/check/update/c2", {"Status": "passing"}, NODE_WRITE, "deny"),
    ("PUT", "/v1/agent/check/deregister/c2", None, NODE_WRITE, "deny"),
    ("PUT", "/v1/agent/reload", None, AGENT_WRITE, "deny"),
    ("PUT", "/v1/agent/join/127.0.0.1:1", None, AGENT_WRITE, "deny"),
    ("PUT", "/v1/agent/force-leave/nobody", None, 'operator = "write"', "deny"),
    ("PUT", "/v1/agent/token/replication", {"Token": ""}, AGENT_WRITE, "deny"),
    (
        "PUT",
        "/v1/catalog/register",
        {"Node": "ext", "Address": "192.0.2.1", "Service": {"Service": "extsvc"}},
        'node "ext" { policy = "write" }\nservice "extsvc" { policy = "write" }',
        "deny",
    ),
    (
        "PUT",
        "/v1/catalog/deregister",
        {"Node": "ext", "ServiceID": "extsvc"},
        'node "ext" { policy = "write" }',
        "deny",
    ),
    ("GET", "/v1/catalog/nodes", None, NODE_READ, "filter"),
    ("GET", "/v1/catalog/services", None, WEB_READ, "filter"),
    ("GET", "/v1/catalog/service/web", None, f"{WEB_READ}\n{NODE_READ}", "filter"),
    ("GET", f"/v1/catalog/node/{NODE}", None, NODE_READ, "filter"),
    ("GET", f"/v1/catalog/node-services/{NODE}", None, NODE_READ, "filter"),
    ("GET", f"/v1/health/node/{NODE}", None, NODE_READ, "filter"),
    ("GET", "/v1/health/checks/web", None, f"{WEB_READ}\n{NODE_READ}", "filter"),
    ("GET", "/v1/health/service/web", None, f"{WEB_READ}\n{NODE_READ}", "filter"),
    ("GET", "/v1/health/state/any", None, f"{NODE_READ}\n{WEB_READ}", "filter"),
    ("GET", "/v1/kv/app/k", None, 'key "app/k" { policy = "read" }', "deny"),
    ("PUT", "/v1/kv/app/k", "v", 'key "app/k" { policy = "write" }', "deny"),
    ("DELETE", "/v1/kv/app/gone", None, 'key "app/gone" { policy = "write" }', "deny"),
    ("PUT", "/v1/session/create", {}, SESSION_WRITE, "deny"),
    ("PUT", f"/v1/session/renew/{SID}", None, SESSION_WRITE, "deny"),
    ("GET", f"/v1/session/info/{SID}", None, f'session "{NODE}" {{ policy = "read" }}', "filter"),
    ("GET", f"/v1/session/node/{NODE}", None, f'session "{NODE}" {{ policy = "read" }}', "filter"),
    ("GET", "/v1/session/list", None, f'session "{NODE}" {{ policy = "read" }}', "filter"),
    ("PUT", f"/v1/session/destroy/{SID}", None, SESSION_WRITE, "deny"),
    ("PUT", "/v1/txn", [{"KV": {"Verb": "get", "Key": "app/k"}}], 'key "app/k" { policy = "read" }', "txn"),
    ("PUT", "/v1/event/fire/deploy", None, 'event "deploy" { policy = "write" }', "deny"),
    ("GET", "/v1/event/list", None, 'event "deploy" { policy = "read" }', "filter"),
    ("GET", "/v1/snapshot", None, 'acl = "write"', "deny"),
    ("PUT", "/v1/snapshot", b"not a snapshot", 'acl = "write"', "deny"),
    ("GET", "/v1/operator/raft/configuration", None, 'operator = "read"', "deny"),
    ("GET", "/v1/operator/autopilot/health", None, 'operator = "read"', "deny"),
    ("GET", "/v1/operator/autopilot/configuration", None, 'operator = "read"', "deny"),
    ("GET", "/v1/coordinate/nodes", None, NODE_READ, "filter"),
    ("GET", f"/v1/coordinate/node/{NODE}", None, NODE_READ, "deny"),
    ("PUT", "/v1/coordinate/update", COORD, NODE_WRITE, "deny"),
    ("PUT", "/v1/acl/token", {}, 'acl = "write"', "deny"),
    ("GET", "/v1/acl/token/00000000-0000-0000-0000-000000000002", None, 'acl = "read"', "deny"),
    ("PUT", "/v1/acl/token/{accessor}", {"Description": "x"}, 'acl = "write"', "deny"),
    ("DELETE", "/v1/acl/token/{accessor}", None, 'acl = "write"', "deny"),
    ("GET", "/v1/acl/tokens", None, 'acl = "read"', "deny"),
    ("PUT", "/v1/acl/policy", {"Name": "made-by-sweep"}, 'acl = "write"', "deny"),
    ("GET", "/v1/acl/policy/name/global-management", None, 'acl = "read"', "deny"),
    ("GET", "/v1/acl/policy/00000000-0000-0000-0000-000000000001", None, 'acl = "read"', "deny"),
    ("PUT", "/v1/acl/policy/{policy}", {"Name": "sweep-target"}, 'acl = "write"', "deny"),
    ("DELETE", "/v1/acl/policy/{policy}", None, 'acl = "write"', "deny"),
    ("GET", "/v1/acl/policies", None, 'acl = "read"', "deny"),
    ("PUT", "/v1/acl/role", {"Name": "sweep-role"}, 'acl = "write"', "deny"),
    ("GET", "/v1/acl/role/name/sweep-role", None, 'acl = "read"', "deny"),
    ("GET", "/v1/acl/role/{role}", None, 'acl = "read"', "deny"),
    ("PUT", "/v1/acl/role/{role}", {"Name": "sweep-role"}, 'acl = "write"', "deny"),
    ("DELETE", "/v1/acl/role/{role}", None, 'acl = "write"', "deny"),
    ("GET", "/v1/acl/roles", None, 'acl = "read"', "deny"),
    ("GET", "/v1/waypost/virtual-ip/web", None, WEB_READ, "deny"),
]
UNSWEPT = {
    ("PUT", "/v1/agent/leave"): "would stop the agent the sweep runs against; covered by the rule-table test",
    ("GET", "/v1/acl/token/self"): "needs only a valid token, covered in test_api",
    ("GET", "/v1/waypost/virtual-ips"): "empty until the leader allocates; filtered like the catalog lists",
    ("GET", "/v1/waypost/virtual-ip-instances/:name"): "health/service rows, filtered by the same row filter",
}


def _status_only(agent: AgentProcess, method: str, path: str, token: str | None) -> int:
    """The status of a streaming answer (agent/monitor), without reading its endless body."""
    conn = http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=10)
    try:
        conn.request(method, path, headers={"X-Consul-Token": token} if token else {})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def seeded(call: Caller) -> dict[str, str]:
    call.ok("PUT", "/v1/agent/service/register", {"Name": "web", "Check": {"TTL": "30s"}})
    call.ok("PUT", "/v1/agent/check/register", {"Name": "node-check", "TTL": "30s"})
    call.ok("PUT", "/v1/kv/app/k", "v")
    call.ok("PUT", "/v1/event/fire/deploy")
    call.ok("PUT", "/v1/coordinate/update", COORD)
    ids = {"sid": call.ok("PUT", "/v1/session/create", {})["ID"]}
    ids["accessor"] = call.ok("PUT", "/v1/acl/token", {})["AccessorID"]
    ids["policy"] = call.ok("PUT", "/v1/acl/policy", {"Name": "sweep-target"})["ID"]
    ids["role"] = call.ok("PUT", "/v1/acl/role", {"Name": "sweep-role"})["ID"]
    return ids


def test_the_sweep_covers_every_route() -> None:
    swept = {(m, p.split("?")[0]) for m, p, *_ in CASES}
    concrete = {key for key in NEEDS if NEEDS[key] is not OPEN} - set(UNSWEPT)

    def matches(route: tuple[str, str], case: tuple[str, str]) -> bool:
        method, path = route
        if method != case[0]:
            return False
        if "/:" not in path:
            return path == case[1]
        prefix = path[: path.index("/:") + 1]
        if not case[1].startswith(prefix):
            return False
        return not any(
            other[0] == method and "/:" in other[1] and len(other[1]) > len(path)
            and case[1].startswith(other[1][: other[1].index("/:") + 1])
            for other in NEEDS
        )  # fmt: skip

    missing = {route for route in concrete if not any(matches(route, case) for case in swept)}
    assert missing == set()


@pytest.mark.parametrize(
    ("method", "path", "body", "rules", "kind"), CASES, ids=[f"{c[0]} {c[1]}" for c in CASES]
)
def test_route_refuses_or_filters_without_a_token_and_works_with_exactly_its_grant(
    acl_agent: AgentProcess,
    call: Caller,
    seeded: dict[str, str],
    method: str,
    path: str,
    body: Any,
    rules: str,
    kind: str,
) -> None:
    path = path.format(**seeded)
    if path.startswith("/v1/agent/monitor"):
        assert _status_only(acl_agent, method, path, None) == 403
        token = call.token_for(rules, "grant-monitor")
        assert _status_only(acl_agent, method, path, token) == 200
        return
    status, value, headers = call(method, path, body)
    if kind == "deny":
        assert status == 403, (status, value)
        assert value.startswith("Permission denied: anonymous token lacks permission"), value
    elif kind == "txn":
        assert status == 409, (status, value)
        assert value["Errors"][0]["What"].startswith("Permission denied")
    else:
        assert status == 200, (status, value)
        assert headers.get("X-Consul-Results-Filtered-By-ACLs") == "true", (path, value)
        assert not value
    token = call.token_for(rules, f"grant-{uuid.uuid4().hex}")
    status, value, headers = call(method, path, body, token=token)
    assert status not in (401, 403), (status, value)
    if kind == "filter":
        assert status == 200
        assert value, (path, value)
    if kind != "filter" or status != 200:
        return
    assert call(method, path, body, token=ROOT)[1] is not None
