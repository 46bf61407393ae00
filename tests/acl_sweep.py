"""The ACL route sweep, shared by the one-agent sweep (tests/acl/test_sweep.py) and the
secure cluster (tests/e2e/test_secure_cluster.py): one case per route, what seeding the
agent needs, and the check that a route refuses or filters without a token and works with
a token whose policy grants exactly what it needs.

Cases name the node of the agent they run against (its agent, node and session rules) and
ACL records with that name in them, so that the same cluster can be swept on two agents.
"""

from __future__ import annotations

import http.client
import uuid
from typing import Any, NamedTuple

from acl_kit import ROOT, Caller
from waypost.testing import AgentProcess, wait_for

__all__ = ["UNSWEPT", "Case", "check_case", "seed", "sweep_cases"]


class Case(NamedTuple):
    """``kind`` is "deny" for a refused route (403 without a token), "filter" for a
    filtered read, "stream" for a filtered delta stream (its snapshot read), "txn" for
    /v1/txn KV reads (run, their results dropped). ``{sid}``, ``{accessor}``, ``{policy}`` and
    ``{role}`` in the path are the records ``seed`` made."""

    method: str
    path: str
    body: Any
    rules: str
    kind: str

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


UNSWEPT = {
    ("PUT", "/v1/agent/leave"): "would stop the agent the sweep runs against; covered by the rule-table test",
    ("GET", "/v1/acl/token/self"): "needs only a valid token, covered in test_api",
    ("GET", "/v1/waypost/virtual-ips"): "empty until the leader allocates; filtered like the catalog lists",
    (
        "GET",
        "/v1/health/ingress/:service",
    ): "always empty (no ingress config entries); health/service's filter",
    ("GET", "/v1/waypost/virtual-ip-instances/:name"): "health/service rows, filtered by the same row filter",
    ("PUT", "/v1/internal/query/execute-remote"): (
        "another datacenter's failover, filtered by the query's token; covered in tests/api/test_query.py"
    ),
}


def coordinate(node: str) -> dict[str, Any]:
    return {"Node": node, "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}}


def sweep_cases(node: str) -> list[Case]:
    node_read = f'node "{node}" {{ policy = "read" }}'
    node_write = f'node "{node}" {{ policy = "write" }}'
    web_read = 'service "web" { policy = "read" }'
    agent_read = f'agent "{node}" {{ policy = "read" }}'
    agent_write = f'agent "{node}" {{ policy = "write" }}'
    session_read = f'session "{node}" {{ policy = "read" }}'
    session_write = f'session "{node}" {{ policy = "write" }}'
    api_write = 'service "api" { policy = "write" }'
    made = f'query "sweep-made-{node}" {{ policy = "write" }}'
    query_read = f'query "sweep-q-{node}" {{ policy = "read" }}'
    query_write = f'query "sweep-q-{node}" {{ policy = "write" }}'
    return [
        Case("GET", "/v1/agent/self", None, agent_read, "deny"),
        Case("GET", "/v1/agent/members", None, node_read, "filter"),
        Case("GET", "/v1/agent/host", None, 'operator = "read"', "deny"),
        Case("GET", "/v1/agent/services", None, web_read, "filter"),
        Case("GET", "/v1/agent/service/web", None, web_read, "deny"),
        Case("GET", "/v1/agent/checks", None, node_read, "filter"),
        Case("GET", "/v1/agent/metrics", None, agent_read, "deny"),
        Case("GET", "/v1/agent/monitor", None, agent_read, "deny"),
        Case("GET", "/v1/agent/health/service/name/web", None, web_read, "deny"),
        Case("GET", "/v1/agent/health/service/id/web", None, web_read, "deny"),
        Case("PUT", "/v1/agent/service/register", {"Name": "api"}, api_write, "deny"),
        Case("PUT", "/v1/agent/service/register", {"service": "api"}, api_write, "deny"),
        Case("PUT", "/v1/agent/service/deregister/api", None, api_write, "deny"),
        Case(
            "PUT",
            "/v1/agent/service/maintenance/web?enable=false",
            None,
            'service "web" { policy = "write" }',
            "deny",
        ),
        Case("PUT", "/v1/agent/maintenance?enable=false", None, node_write, "deny"),
        Case("PUT", "/v1/agent/check/register", {"Name": "c2", "TTL": "30s"}, node_write, "deny"),
        Case("PUT", "/v1/agent/check/pass/c2", None, node_write, "deny"),
        Case("PUT", "/v1/agent/check/warn/c2", None, node_write, "deny"),
        Case("PUT", "/v1/agent/check/fail/c2", None, node_write, "deny"),
        Case("PUT", "/v1/agent/check/update/c2", {"Status": "passing"}, node_write, "deny"),
        Case("PUT", "/v1/agent/check/deregister/c2", None, node_write, "deny"),
        Case("PUT", "/v1/agent/reload", None, agent_write, "deny"),
        Case("PUT", "/v1/agent/join/127.0.0.1:1", None, agent_write, "deny"),
        Case("PUT", "/v1/agent/force-leave/nobody", None, 'operator = "write"', "deny"),
        Case(
            "PUT",
            "/v1/internal/wan/exchange",
            {"Self": {"Name": "far", "Datacenter": "dc-far", "URL": "http://127.0.0.1:1"}},
            'operator = "write"',
            "deny",
        ),
        Case("GET", "/v1/internal/acl/replicate", None, 'acl = "write"', "deny"),
        Case("GET", "/v1/internal/wan/exchange", None, node_read, "deny"),
        Case("PUT", "/v1/agent/token/replication", {"Token": ""}, agent_write, "deny"),
        Case(
            "PUT",
            "/v1/catalog/register",
            {"Node": "ext", "Address": "192.0.2.1", "Service": {"Service": "extsvc"}},
            'node "ext" { policy = "write" }\nservice "extsvc" { policy = "write" }',
            "deny",
        ),
        Case(
            "PUT",
            "/v1/catalog/deregister",
            {"Node": "ext"},
            'node "ext" { policy = "write" }',
            "deny",
        ),
        Case("GET", "/v1/catalog/nodes", None, node_read, "filter"),
        Case("GET", "/v1/catalog/services", None, web_read, "filter"),
        Case("GET", "/v1/internal/ui/services", None, web_read, "filter"),
        Case("GET", "/v1/internal/ui/nodes", None, node_read, "filter"),
        Case("GET", f"/v1/internal/ui/node/{node}", None, node_read, "filter"),
        Case("GET", "/v1/catalog/service/web", None, f"{web_read}\n{node_read}", "filter"),
        Case("GET", f"/v1/catalog/node/{node}", None, node_read, "filter"),
        Case("GET", f"/v1/catalog/node-services/{node}", None, node_read, "filter"),
        Case("GET", f"/v1/health/node/{node}", None, node_read, "filter"),
        Case("GET", "/v1/health/checks/web", None, f"{web_read}\n{node_read}", "filter"),
        Case("GET", "/v1/health/service/web", None, f"{web_read}\n{node_read}", "filter"),
        Case("GET", "/v1/stream/health/service/web", None, f"{web_read}\n{node_read}", "stream"),
        Case("GET", "/v1/stream/catalog/services", None, web_read, "stream"),
        Case("GET", "/v1/stream/kv/app/", None, 'key_prefix "app/" { policy = "read" }', "stream"),
        Case("GET", "/v1/health/state/any", None, f"{node_read}\n{web_read}", "filter"),
        Case("GET", "/v1/kv/app/k", None, 'key "app/k" { policy = "read" }', "deny"),
        Case("PUT", "/v1/kv/app/k", "v", 'key "app/k" { policy = "write" }', "deny"),
        Case("DELETE", "/v1/kv/app/gone", None, 'key "app/gone" { policy = "write" }', "deny"),
        Case("PUT", "/v1/session/create", {}, session_write, "deny"),
        Case("PUT", "/v1/session/renew/{sid}", None, session_write, "deny"),
        Case("GET", "/v1/session/info/{sid}", None, session_read, "filter"),
        Case("GET", f"/v1/session/node/{node}", None, session_read, "filter"),
        Case("GET", "/v1/session/list", None, session_read, "filter"),
        Case("PUT", "/v1/session/destroy/{sid}", None, session_write, "deny"),
        Case(
            "PUT",
            "/v1/txn",
            [{"KV": {"Verb": "get", "Key": "app/k"}}],
            'key "app/k" { policy = "read" }',
            "txn",
        ),
        Case("PUT", "/v1/event/fire/deploy", None, 'event "deploy" { policy = "write" }', "deny"),
        Case("GET", "/v1/event/list", None, 'event "deploy" { policy = "read" }', "filter"),
        Case("GET", "/v1/snapshot", None, 'acl = "write"', "deny"),
        Case("PUT", "/v1/snapshot", b"not a snapshot", 'acl = "write"', "deny"),
        Case("GET", "/v1/operator/raft/configuration", None, 'operator = "read"', "deny"),
        Case("GET", "/v1/operator/autopilot/health", None, 'operator = "read"', "deny"),
        Case("GET", "/v1/operator/autopilot/configuration", None, 'operator = "read"', "deny"),
        Case("GET", "/v1/coordinate/nodes", None, node_read, "filter"),
        Case("GET", f"/v1/coordinate/node/{node}", None, node_read, "deny"),
        Case("PUT", "/v1/coordinate/update", coordinate(node), node_write, "deny"),
        Case("PUT", "/v1/acl/token", {}, 'acl = "write"', "deny"),
        Case("GET", "/v1/acl/token/00000000-0000-0000-0000-000000000002", None, 'acl = "read"', "deny"),
        Case("PUT", "/v1/acl/token/{accessor}", {"Description": "x"}, 'acl = "write"', "deny"),
        Case("DELETE", "/v1/acl/token/{accessor}", None, 'acl = "write"', "deny"),
        Case("GET", "/v1/acl/tokens", None, 'acl = "read"', "deny"),
        Case("PUT", "/v1/acl/policy", {"Name": f"made-by-sweep-{node}"}, 'acl = "write"', "deny"),
        Case("GET", "/v1/acl/policy/name/global-management", None, 'acl = "read"', "deny"),
        Case("GET", "/v1/acl/policy/00000000-0000-0000-0000-000000000001", None, 'acl = "read"', "deny"),
        Case("PUT", "/v1/acl/policy/{policy}", {"Name": f"sweep-target-{node}"}, 'acl = "write"', "deny"),
        Case("DELETE", "/v1/acl/policy/{policy}", None, 'acl = "write"', "deny"),
        Case("GET", "/v1/acl/policies", None, 'acl = "read"', "deny"),
        Case("PUT", "/v1/acl/role", {"Name": f"sweep-role-{node}"}, 'acl = "write"', "deny"),
        Case("GET", f"/v1/acl/role/name/sweep-role-{node}", None, 'acl = "read"', "deny"),
        Case("GET", "/v1/acl/role/{role}", None, 'acl = "read"', "deny"),
        Case("PUT", "/v1/acl/role/{role}", {"Name": f"sweep-role-{node}"}, 'acl = "write"', "deny"),
        Case("DELETE", "/v1/acl/role/{role}", None, 'acl = "write"', "deny"),
        Case("GET", "/v1/acl/roles", None, 'acl = "read"', "deny"),
        Case("GET", "/v1/waypost/virtual-ip/web", None, web_read, "deny"),
        Case("GET", "/v1/agent/connect/ca/leaf/web", None, 'service "web" { policy = "write" }', "deny"),
        Case("GET", "/v1/connect/ca/configuration", None, 'operator = "read"', "deny"),
        Case(
            "PUT",
            "/v1/connect/ca/configuration",
            {"Provider": "consul", "Config": {"LeafCertTTL": "72h"}},
            'operator = "write"',
            "deny",
        ),
        *_connect_cases(node, web_read, node_read),
        Case(
            "POST", "/v1/query", {"Name": f"sweep-made-{node}", "Service": {"Service": "web"}}, made, "deny"
        ),
        Case("GET", "/v1/query", None, query_read, "filter"),
        Case("GET", "/v1/query/{query}", None, query_read, "deny"),
        Case("GET", f"/v1/query/sweep-q-{node}/explain", None, query_read, "deny"),
        Case(
            "PUT",
            "/v1/query/{query}",
            {"Name": f"sweep-q-{node}", "Service": {"Service": "web"}},
            query_write,
            "deny",
        ),
        Case(
            "DELETE", "/v1/query/{doomed}", None, f'query "sweep-gone-{node}" {{ policy = "write" }}', "deny"
        ),
    ]


def _connect_cases(node: str, web_read: str, node_read: str) -> list[Case]:
    """Intentions need intentions read on either end (a service rule's read gives it) or
    intentions write on the destination; the mesh catalog reads filter as the catalog's do."""
    db_read, db_write = (
        'service "db" { policy = "read" }',
        'service "db" {\n  policy = "read"\n  intentions = "write"\n}',
    )
    exact = f"/v1/connect/intentions/exact?source=sweep-x-{node}&destination=db"
    proxy_read = f'{web_read}\nservice "web-proxy" {{ policy = "read" }}\n{node_read}'
    allow = {"SourceName": "web", "DestinationName": "db", "Action": "deny"}
    return [
        Case("GET", "/v1/connect/intentions", None, web_read, "filter"),
        Case("PUT", "/v1/connect/intentions", {**allow, "SourceName": f"sweep-new-{node}"}, db_write, "deny"),
        Case("GET", "/v1/connect/intentions/exact?source=web&destination=db", None, db_read, "deny"),
        Case("PUT", exact, {"Action": "allow"}, db_write, "deny"),
        Case("DELETE", exact, None, db_write, "deny"),
        Case("GET", "/v1/connect/intentions/match?by=destination&name=db", None, db_read, "deny"),
        Case("GET", "/v1/connect/intentions/check?source=web&destination=db", None, db_read, "deny"),
        Case("GET", "/v1/connect/intentions/{intention}", None, web_read, "deny"),
        Case("PUT", "/v1/connect/intentions/{intention}", allow, db_write, "deny"),
        Case("DELETE", "/v1/connect/intentions/{doomed_intention}", None, db_write, "deny"),
        Case(
            "PUT",
            "/v1/agent/connect/authorize",
            {"Target": "web", "ClientCertURI": "spiffe://x.consul/ns/default/dc/dc1/svc/db"},
            'service "web" { policy = "write" }',
            "deny",
        ),
        Case("GET", "/v1/catalog/connect/web", None, proxy_read, "filter"),
        Case("GET", "/v1/health/connect/web", None, proxy_read, "filter"),
        Case("GET", "/v1/catalog/gateway-services/gw", None, 'service "gw" { policy = "read" }', "deny"),
        Case("GET", "/v1/discovery-chain/web", None, web_read, "deny"),
    ]


def _seed_intention(call: Caller, source: str) -> str:
    """A legacy intention (it has an ID); on a second agent of the same cluster it exists."""
    body = {"SourceName": source, "DestinationName": "db", "Action": "allow"}
    call("POST", "/v1/connect/intentions", body, token=ROOT)
    return str(call.ok("GET", f"/v1/connect/intentions/exact?source={source}&destination=db")["ID"])


def seed(call: Caller, node: str) -> dict[str, str]:
    """What the cases read, made with the management token on the agent named ``node``:
    its own service, check, session and coordinate, a key and an event, and the ACL
    records and prepared queries the cases edit. Returns the IDs their paths name. Waits until this agent's
    catalog holds its service (anti-entropy registers it on a client agent)."""
    call.ok("PUT", "/v1/agent/service/register", {"Name": "web", "Check": {"TTL": "30s"}})
    call.ok("PUT", "/v1/agent/check/register", {"Name": "node-check", "TTL": "30s"})
    wait_for(lambda: "web" in {s["Service"] for s in _node_services(call, node)})
    call.ok("PUT", "/v1/kv/app/k", "v")
    call.ok("PUT", "/v1/event/fire/deploy")
    call.ok("PUT", "/v1/coordinate/update", coordinate(node))
    ids = {"sid": call.ok("PUT", "/v1/session/create", {})["ID"]}
    ids["accessor"] = call.ok("PUT", "/v1/acl/token", {})["AccessorID"]
    ids["policy"] = call.ok("PUT", "/v1/acl/policy", {"Name": f"sweep-target-{node}"})["ID"]
    ids["role"] = call.ok("PUT", "/v1/acl/role", {"Name": f"sweep-role-{node}"})["ID"]
    proxy = {"DestinationServiceName": "web"}
    call.ok(
        "PUT",
        "/v1/agent/service/register",
        {"Name": "web-proxy", "Kind": "connect-proxy", "Port": 21000, "Proxy": proxy},
    )
    ids["intention"] = _seed_intention(call, "web")
    ids["doomed_intention"] = _seed_intention(call, f"sweep-gone-{node}")
    for key, name in (("query", f"sweep-q-{node}"), ("doomed", f"sweep-gone-{node}")):
        ids[key] = call.ok("POST", "/v1/query", {"Name": name, "Service": {"Service": "web"}})["ID"]
    return ids


def _node_services(call: Caller, node: str) -> list[dict[str, Any]]:
    found = call.ok("GET", f"/v1/catalog/node-services/{node}")
    return list(found["Services"]) if found else []


def _connect(agent: AgentProcess) -> http.client.HTTPConnection:
    if agent.tls is not None:
        return http.client.HTTPSConnection("127.0.0.1", agent.https_port, timeout=10, context=agent.tls)
    return http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=10)


def _status_only(agent: AgentProcess, method: str, path: str, token: str | None) -> int:
    """The status of a streaming answer (agent/monitor), without reading its endless body."""
    conn = _connect(agent)
    try:
        conn.request(method, path, headers={"X-Consul-Token": token} if token else {})
        return conn.getresponse().status
    finally:
        conn.close()


def _snapshot_rows(agent: AgentProcess, path: str, token: str | None) -> int:
    """How many rows a delta stream's snapshot shows (it is read up to its end marker)."""
    conn = _connect(agent)
    try:
        conn.request("GET", path, headers={"X-Consul-Token": token} if token else {})
        resp = conn.getresponse()
        assert resp.status == 200, (path, resp.status, resp.read())
        rows = 0
        for _ in range(10_000):
            line = resp.readline()
            assert line, f"{path}: the stream ended before its snapshot did"
            if line == b"event: upsert\n":
                rows += 1
            elif line == b"event: end-of-snapshot\n":
                return rows
        raise AssertionError(f"{path}: no end-of-snapshot")
    finally:
        conn.close()


def check_case(call: Caller, case: Case, seeded: dict[str, str]) -> None:
    """Without a token the route refuses or filters; with a token granting ``case.rules``
    it works (a filtered read then shows rows)."""
    method, body, rules, kind = case.method, case.body, case.rules, case.kind
    path = case.path.format(**seeded)
    if path.startswith("/v1/agent/monitor"):
        assert _status_only(call.agent, method, path, None) == 403
        token = call.token_for(rules, f"grant-{uuid.uuid4().hex}")
        assert _status_only(call.agent, method, path, token) == 200
        return
    if kind == "stream":
        assert _snapshot_rows(call.agent, path, None) == 0
        assert _snapshot_rows(call.agent, path, call.token_for(rules, f"grant-{uuid.uuid4().hex}")) > 0
        return
    status, value, headers = call(method, path, body)
    if kind == "deny":
        assert status == 403, (status, value)
        assert value.startswith("Permission denied: anonymous token lacks permission"), value
    elif kind == "txn":
        assert status == 200, (status, value)
        assert value == {"Results": [], "Errors": None}, value
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
        assert call(method, path, body, token=ROOT)[1] is not None
    elif kind == "txn":
        assert (status, len(value["Results"])) == (200, len(body)), (status, value)
