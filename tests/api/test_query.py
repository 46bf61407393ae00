"""/v1/query against real agents: the full life of a query, execution with near and limit,
templates, explain, the session a query dies with, bad input with Consul's messages, and
what ACLs let a caller see and do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acl_kit import ROOT, Caller, start_acl_agent
from waypost.testing import AgentProcess, wait_for


@pytest.fixture(scope="module")
def agent(dev_agent: AgentProcess) -> AgentProcess:
    dev_agent.put(
        "/v1/agent/service/register",
        {
            "Name": "web",
            "Tags": ["v1", "primary"],
            "Meta": {"env": "prod"},
            "Port": 80,
            "Check": {"TTL": "30s"},
        },
    )
    dev_agent.put("/v1/agent/check/pass/service:web")
    for node, tags in (("n2", ["v1"]), ("n3", ["v2", "primary"])):
        dev_agent.put(
            "/v1/catalog/register",
            {
                "Node": node,
                "Address": f"10.0.0.{node[1]}",
                "Service": {"Service": "web", "Tags": tags, "Port": 81},
            },
        )
    return dev_agent


def _call(agent: AgentProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else None
    status, _, data = agent.request(method, path, raw)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, data.decode()


def _create(agent: AgentProcess, body: dict[str, Any]) -> str:
    status, value = _call(agent, "POST", "/v1/query", body)
    assert status == 200, value
    return str(value["ID"])


def _nodes(answer: dict[str, Any]) -> list[str]:
    return sorted(n["Node"]["Node"] for n in answer["Nodes"])


def test_create_read_list_update_delete(agent: AgentProcess) -> None:
    qid = _create(agent, {"Name": "crud", "Service": {"Service": "web"}, "DNS": {"TTL": "10s"}})
    [stored] = agent.get(f"/v1/query/{qid}")
    assert (stored["ID"], stored["Name"], stored["DNS"]) == (qid, "crud", {"TTL": "10s"})
    assert stored["Service"]["Failover"] == {"NearestN": 0, "Datacenters": None, "Targets": None}
    assert stored["CreateIndex"] == stored["ModifyIndex"] > 0
    assert qid in {q["ID"] for q in agent.get("/v1/query")}
    status, _ = _call(agent, "PUT", f"/v1/query/{qid}", {"Name": "crud", "Service": {"Service": "db"}})
    assert status == 200
    [updated] = agent.get(f"/v1/query/{qid}")
    assert updated["Service"]["Service"] == "db"
    assert updated["ModifyIndex"] > updated["CreateIndex"] == stored["CreateIndex"]
    assert _call(agent, "DELETE", f"/v1/query/{qid}")[0] == 200
    assert _call(agent, "GET", f"/v1/query/{qid}") == (404, "Query not found")
    assert _call(agent, "GET", f"/v1/query/{qid}/execute") == (404, "Query not found")


def test_execute_filters_by_tags_and_carries_the_datacenter(agent: AgentProcess) -> None:
    _create(agent, {"Name": "prim", "Service": {"Service": "web", "Tags": ["primary", "!v2"]}})
    answer = agent.get("/v1/query/prim/execute")
    assert _nodes(answer) == ["test-node"]
    assert (answer["Service"], answer["Datacenter"], answer["Failovers"]) == ("web", "dc1", 0)
    assert answer["DNS"] == {"TTL": ""}
    assert _nodes(agent.get("/v1/query/PRIM/execute")) == ["test-node"]


def test_execute_near_puts_the_node_first_and_limit_trims(agent: AgentProcess) -> None:
    _create(agent, {"Name": "all-web", "Service": {"Service": "web"}})
    for _ in range(5):
        answer = agent.get("/v1/query/all-web/execute?near=n3")
        assert answer["Nodes"][0]["Node"]["Node"] == "n3"
        assert agent.get("/v1/query/all-web/execute?near=_agent")["Nodes"][0]["Node"]["Node"] == "test-node"
    assert len(agent.get("/v1/query/all-web/execute?limit=2")["Nodes"]) == 2
    assert _call(agent, "GET", "/v1/query/all-web/execute?limit=x")[0] == 400


def test_limit_is_read_as_gos_atoi(agent: AgentProcess) -> None:
    """A sign is taken; the spaces, "_" and other scripts' digits Python's int() takes are not."""
    _create(agent, {"Name": "atoi-web", "Service": {"Service": "web"}})
    assert len(agent.get("/v1/query/atoi-web/execute?limit=%2B2")["Nodes"]) == 2
    assert len(agent.get("/v1/query/atoi-web/execute?limit=-1")["Nodes"]) > 2
    for raw, shown in (("1_0", "1_0"), ("%205", " 5"), ("%D9%A5", "\u0665"), ("%2B", "+")):
        assert _call(agent, "GET", f"/v1/query/atoi-web/execute?limit={raw}") == (
            400,
            f'Bad limit: strconv.Atoi: parsing "{shown}": invalid syntax',
        )
    assert _call(agent, "GET", f"/v1/query/atoi-web/execute?limit={'9' * 20}") == (
        400,
        f'Bad limit: strconv.Atoi: parsing "{"9" * 20}": value out of range',
    )


def test_only_passing_drops_the_unchecked_node_s_failing_peers(agent: AgentProcess) -> None:
    agent.put("/v1/agent/check/register", {"Name": "warn", "TTL": "30s", "ServiceID": "web"})
    agent.put("/v1/agent/check/warn/warn")
    _create(agent, {"Name": "strict", "Service": {"Service": "web", "OnlyPassing": True}})
    _create(
        agent, {"Name": "lax", "Service": {"Service": "web", "IgnoreCheckIDs": ["warn"], "OnlyPassing": True}}
    )
    try:
        assert "test-node" not in _nodes(agent.get("/v1/query/strict/execute"))
        assert "test-node" in _nodes(agent.get("/v1/query/lax/execute"))
    finally:
        agent.put("/v1/agent/check/deregister/warn")


def test_templates_render_per_name_and_explain_shows_the_rendering(agent: AgentProcess) -> None:
    _create(
        agent,
        {
            "Name": "geo-",
            "Template": {
                "Type": "name_prefix_match",
                "Regexp": "^geo-([a-z]+)-(.*)$",
                "RemoveEmptyTags": True,
            },
            "Service": {"Service": "${match(1)}", "Tags": ["${match(2)}", "${match(5)}"]},
        },
    )
    answer = agent.get("/v1/query/geo-web-v2/execute")
    assert (answer["Service"], _nodes(answer)) == ("web", ["n3"])
    explained = agent.get("/v1/query/geo-web-v1/explain")["Query"]
    assert explained["Service"]["Service"] == "web"
    assert explained["Service"]["Tags"] == ["v1"]
    assert explained["Template"]["Regexp"] == "^geo-([a-z]+)-(.*)$"


def test_a_query_bound_to_a_session_dies_with_it(agent: AgentProcess) -> None:
    sid = agent.put("/v1/session/create", {"Name": "owner"})["ID"]
    qid = _create(agent, {"Session": sid, "Service": {"Service": "web"}})
    assert agent.get(f"/v1/query/{qid}/execute")["Service"] == "web"
    agent.put(f"/v1/session/destroy/{sid}")
    assert _call(agent, "GET", f"/v1/query/{qid}") == (404, "Query not found")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "Name": "re",
                "Template": {"Type": "name_prefix_match", "Regexp": "geo-(?P=x)"},
                "Service": {"Service": "s"},
            },
            "failed compiling template: Bad Regexp: error parsing regexp: ",
        ),
        (
            {"Name": "t", "Template": {"Type": "bogus"}, "Service": {"Service": "s"}},
            "Bad Template.Type 'bogus'",
        ),
        ({"Name": "x", "Service": {"Service": "${name.full}"}}, None),
        ({"Service": {"Service": "s"}}, "Invalid prepared query: Must be bound to a session"),
        ({"Name": "n", "Service": {}}, "Invalid prepared query: Must provide a Service name to query"),
        ({"Name": "n", "Session": "nope", "Service": {"Service": "s"}}, 'invalid session "nope"'),
        ({"Name": "n", "Service": {"Service": "s", "Tag": ["x"]}}, 'unknown field "Service.Tag"'),
        ({"Name": "n", "Service": {"Service": "s"}, "DNS": {"TTL": "soon"}}, "Bad DNS TTL 'soon'"),
    ],
)
def test_bad_definitions_are_400_naming_what_is_wrong(
    agent: AgentProcess, body: dict[str, Any], message: str | None
) -> None:
    status, value = _call(agent, "POST", "/v1/query", body)
    if message is None:  # a static query's strings are not templates
        assert status == 200
        return
    assert status == 400, value
    assert message in value


def test_malformed_requests_are_400_not_500(agent: AgentProcess) -> None:
    status, _, raw = agent.request("POST", "/v1/query", b"{not json")
    assert status == 400
    assert raw.startswith(b"Request decode failed")
    assert _call(
        agent,
        "PUT",
        "/v1/query/0b0a7c9e-0000-4000-8000-000000000000",
        {"Name": "z", "Service": {"Service": "s"}},
    ) == (
        400,
        "Cannot modify non-existent prepared query: '0b0a7c9e-0000-4000-8000-000000000000'",
    )
    assert _call(agent, "GET", "/v1/query/")[0] == 400


# -- ACLs ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caller]:
    with start_acl_agent(Path(tmp_path_factory.mktemp("query-acl"))) as acl_agent:
        call = Caller(acl_agent)
        call.ok("PUT", "/v1/agent/service/register", {"Name": "web", "Port": 80})
        wait_for(lambda: call.ok("GET", "/v1/catalog/service/web"))
        yield call


def test_writes_need_query_write_on_the_name(secured: Caller) -> None:
    body = {"Name": "team-web", "Token": "secret-of-query", "Service": {"Service": "web"}}
    status, value, _ = secured("POST", "/v1/query", body)
    assert status == 403
    assert "lacks permission 'query:write' on \"team-web\"" in value
    writer = secured.token_for('query_prefix "team-" { policy = "write" }', "q-writer")
    status, value, _ = secured("POST", "/v1/query", body, token=writer)
    assert status == 200, value
    qid = value["ID"]
    status, value, _ = secured("PUT", f"/v1/query/{qid}", {**body, "Name": "other"}, token=writer)
    assert status == 403
    assert secured("DELETE", f"/v1/query/{qid}")[0] == 403


def test_reads_filter_by_name_and_hide_the_token_from_non_managers(secured: Caller) -> None:
    qid = secured.ok(
        "POST", "/v1/query", {"Name": "seen-q", "Token": "tok-1", "Service": {"Service": "web"}}
    )["ID"]
    status, value, headers = secured("GET", "/v1/query")
    assert (status, value) == (200, [])
    assert headers.get("X-Consul-Results-Filtered-By-ACLs") == "true"
    reader = secured.token_for('query "seen-q" { policy = "read" }', "q-reader")
    [listed] = secured.ok("GET", "/v1/query", token=reader)
    assert (listed["ID"], listed["Token"]) == (qid, "<hidden>")
    assert secured.ok("GET", f"/v1/query/{qid}", token=reader)[0]["Token"] == "<hidden>"
    assert secured.ok("GET", f"/v1/query/{qid}", token=ROOT)[0]["Token"] == "tok-1"
    assert secured("GET", f"/v1/query/{qid}")[0] == 403
    assert secured("GET", "/v1/query/seen-q/explain")[0] == 403
    assert secured.ok("GET", "/v1/query/seen-q/explain", token=reader)["Query"]["Token"] == "<hidden>"


def test_execution_uses_the_query_token_else_the_callers(secured: Caller) -> None:
    service_reader = secured.token_for(
        'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }', "web-reader"
    )
    secured.ok(
        "POST", "/v1/query", {"Name": "own-token", "Token": service_reader, "Service": {"Service": "web"}}
    )
    secured.ok("POST", "/v1/query", {"Name": "caller-token", "Service": {"Service": "web"}})
    assert len(secured.ok("GET", "/v1/query/own-token/execute", token=None)["Nodes"]) == 1
    status, value, headers = secured("GET", "/v1/query/caller-token/execute")
    assert status == 200
    assert value["Nodes"] == []
    assert headers.get("X-Consul-Results-Filtered-By-ACLs") == "true"
    assert len(secured.ok("GET", "/v1/query/caller-token/execute", token=service_reader)["Nodes"]) == 1
