"""/v1/connect/intentions and /v1/agent/connect/authorize against a real agent: Consul's
CRUD by ID and by name, match and check, the decision a proxy asks for, and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from waypost.testing import AgentProcess

URI = "spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/{}"


def _call(agent: AgentProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    status, _, raw = agent.request(method, path, data)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode()


def _authorize(agent: AgentProcess, source: str, target: str) -> dict[str, Any]:
    status, out = _call(
        agent, "POST", "/v1/agent/connect/authorize", {"Target": target, "ClientCertURI": URI.format(source)}
    )
    assert status == 200, out
    return dict(out)


def test_legacy_crud_by_id(dev_agent: AgentProcess) -> None:
    status, out = _call(
        dev_agent,
        "POST",
        "/v1/connect/intentions",
        {
            "SourceName": "web",
            "DestinationName": "db",
            "Action": "allow",
            "Description": "d",
            "Meta": {"k": "v"},
        },
    )
    assert status == 200
    ident = out["ID"]
    status, got = _call(dev_agent, "GET", f"/v1/connect/intentions/{ident}")
    assert status == 200
    fields = ("ID", "SourceNS", "SourceName", "DestinationName", "Action", "Precedence", "Meta")
    assert {k: got[k] for k in fields} == {
        "ID": ident, "SourceNS": "default", "SourceName": "web", "DestinationName": "db", "Action": "allow",
        "Precedence": 9, "Meta": {"k": "v"},
    }  # fmt: skip
    assert got["CreatedAt"].endswith("Z")
    status, out = _call(
        dev_agent,
        "POST",
        "/v1/connect/intentions",
        {"SourceName": "web", "DestinationName": "db", "Action": "deny"},
    )
    assert status == 400
    assert out.startswith("duplicate intention found: default/web => default/db")
    assert (
        _call(
            dev_agent,
            "PUT",
            f"/v1/connect/intentions/{ident}",
            {"SourceName": "web", "DestinationName": "db", "Action": "deny"},
        )[0]
        == 200
    )
    assert _call(dev_agent, "GET", f"/v1/connect/intentions/{ident}")[1]["Action"] == "deny"
    assert _call(dev_agent, "DELETE", f"/v1/connect/intentions/{ident}")[0] == 200
    assert _call(dev_agent, "GET", f"/v1/connect/intentions/{ident}") == (404, "Intention not found")


def test_exact_match_and_check(dev_agent: AgentProcess) -> None:
    put = "/v1/connect/intentions/exact?source={}&destination=orders"
    assert _call(dev_agent, "PUT", put.format("*"), {"Action": "deny"}) == (200, True)
    assert _call(dev_agent, "PUT", put.format("shop"), {"Action": "allow"}) == (200, True)
    status, got = _call(dev_agent, "GET", "/v1/connect/intentions/exact?source=shop&destination=orders")
    assert status == 200
    assert "ID" not in got
    assert got["Precedence"] == 9
    status, matched = _call(dev_agent, "GET", "/v1/connect/intentions/match?by=destination&name=orders")
    assert [(x["SourceName"], x["Precedence"]) for x in matched["orders"]] == [("shop", 9), ("*", 8)]
    check = "/v1/connect/intentions/check?source={}&destination=orders"
    assert _call(dev_agent, "GET", check.format("shop")) == (200, {"Allowed": True})
    assert _call(dev_agent, "GET", check.format("other")) == (200, {"Allowed": False})
    listed = _call(dev_agent, "GET", "/v1/connect/intentions?filter=DestinationName%20%3D%3D%20orders")[1]
    assert [x["SourceName"] for x in listed] == ["shop", "*"]
    assert _call(dev_agent, "DELETE", put.format("shop")) == (200, True)
    assert _call(dev_agent, "GET", "/v1/connect/intentions/exact?source=shop&destination=orders")[0] == 404


def test_authorize_follows_a_changed_intention_at_once(dev_agent: AgentProcess) -> None:
    put = "/v1/connect/intentions/exact?source=billing&destination=ledger"
    assert _authorize(dev_agent, "billing", "ledger") == {
        "Authorized": True,
        "Reason": "Default behavior configured by ACLs",
    }
    assert _call(dev_agent, "PUT", put, {"Action": "deny"})[0] == 200
    denied = _authorize(dev_agent, "billing", "ledger")
    assert denied == {
        "Authorized": False,
        "Reason": "Matched L4 intention: default/billing => default/ledger (Precedence: 9, Action: DENY)",
    }
    assert _call(dev_agent, "PUT", put, {"Action": "allow"})[0] == 200
    assert _authorize(dev_agent, "billing", "ledger")["Authorized"] is True


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        (
            "POST",
            "/v1/connect/intentions",
            {"SourceName": "a", "DestinationName": "b"},
            "Action must be set to 'allow' or 'deny'",
        ),
        (
            "POST",
            "/v1/connect/intentions",
            {"SourceName": "a*", "DestinationName": "b", "Action": "allow"},
            "SourceName: wildcard",
        ),
        (
            "POST",
            "/v1/connect/intentions",
            {"SourceName": "a", "DestinationName": "b", "Action": 1},
            "Action",
        ),
        (
            "POST",
            "/v1/connect/intentions",
            {"SourceName": "a", "DestinationName": "b", "Action": "allow", "Meta": []},
            "Meta",
        ),
        ("POST", "/v1/connect/intentions", [], "Request decode failed"),
        (
            "PUT",
            "/v1/connect/intentions/exact?source=a",
            {"Action": "allow"},
            "required query parameter 'destination' not set",
        ),
        (
            "GET",
            "/v1/connect/intentions/match?by=sideways&name=a",
            None,
            "'by' parameter must be one of 'source' or 'destination'",
        ),
        ("GET", "/v1/connect/intentions/match?by=source", None, "required query parameter 'name' not set"),
        ("GET", "/v1/connect/intentions/check?source=a/b/c&destination=d", None, "at most one '/'"),
        (
            "POST",
            "/v1/agent/connect/authorize",
            {"ClientCertURI": URI.format("a")},
            "Target service must be specified",
        ),
        (
            "POST",
            "/v1/agent/connect/authorize",
            {"Target": "a", "ClientCertURI": "http://x"},
            "ClientCertURI not a valid Connect identifier",
        ),
        (
            "POST",
            "/v1/agent/connect/authorize",
            {"Target": "a", "ClientCertURI": "spiffe://t.consul/agent/client/dc/dc1/id/x"},
            "ClientCertURI not a valid Service identifier",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(
    dev_agent: AgentProcess, method: str, path: str, body: Any, message: str
) -> None:
    status, out = _call(dev_agent, method, path, body)
    assert status == 400, out
    assert message in out
