"""Catalog writes under ACLs, vetted as Consul's ``vetRegisterWithACL`` and
``vetDeregisterWithACL`` and its transaction checks do, against a real default-deny agent
with real tokens: above all, a token that may write a node cannot attach a check to a
service on it that the token may not write, and so cannot flip that service's health."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acl_kit import ROOT, Caller, start_acl_agent
from waypost.testing import AgentProcess

ADDRESS = "192.0.2.10"


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caller]:
    tmp: Path = tmp_path_factory.mktemp("acl-catalog")
    agent: AgentProcess
    with start_acl_agent(tmp) as agent:
        yield Caller(agent)


def _token(call: Caller, rules: str) -> str:
    return call.token_for(rules, f"p-{uuid.uuid4().hex}")


def _node(name: str, **more: Any) -> dict[str, Any]:
    return {"Node": name, "Address": ADDRESS, **more}


def _seed(call: Caller, node: str, *services: str) -> None:
    """``node`` with each service (ID = name) and a passing check on each."""
    for name in services:
        check = {"CheckID": f"{name}-alive", "ServiceID": name, "Status": "passing"}
        call.ok("PUT", "/v1/catalog/register", _node(node, Service={"Service": name}, Check=check))


def _refused(call: Caller, path: str, body: Any, token: str, grant: str) -> None:
    status, answer, _ = call("PUT", path, body, token=token)
    assert status == 403, (status, answer)
    assert answer.startswith("Permission denied: token with AccessorID"), answer
    assert f"lacks permission {grant}" in answer, answer


def _status(call: Caller, name: str, check_id: str) -> str:
    checks = call.ok("GET", f"/v1/health/node/{name}")
    return next(c["Status"] for c in checks if c["CheckID"] == check_id)


def test_a_node_token_cannot_flip_another_services_check(call: Caller) -> None:
    """The attack: node:write alone, a check naming the ``db`` service's ID, in either the
    single ``Check`` or the ``Checks`` list, or as a transaction's check operation."""
    _seed(call, "victim", "db")
    token = _token(call, 'node "victim" { policy = "write" }')
    flip = {"CheckID": "db-alive", "ServiceID": "db", "Status": "critical"}
    for body in (_node("victim", Check=flip), _node("victim", Checks=[flip])):
        _refused(call, "/v1/catalog/register", body, token, "'service:write' on \"db\"")
    op = {"Check": {"Verb": "set", "Check": {"Node": "victim", **flip}}}
    status, answer, _ = call("PUT", "/v1/txn", [op], token=token)
    assert status == 409, (status, answer)
    assert "lacks permission 'service:write' on \"db\"" in answer["Errors"][0]["What"]
    assert _status(call, "victim", "db-alive") == "passing"
    # The node's own checks are the token's to write.
    node_check = {"CheckID": "disk", "Status": "warning"}
    assert call.ok("PUT", "/v1/catalog/register", _node("victim", Check=node_check), token=token) is True


def test_a_service_update_reposting_its_node_needs_no_node_grant(call: Caller) -> None:
    call.ok(
        "PUT", "/v1/catalog/register", _node("steady", TaggedAddresses={"lan": ADDRESS}, NodeMeta={"r": "1"})
    )
    token = _token(call, 'service "api" { policy = "write" }')
    same = _node("steady", TaggedAddresses={"lan": ADDRESS}, NodeMeta={"r": "1"}, Service={"Service": "api"})
    assert call.ok("PUT", "/v1/catalog/register", same, token=token) is True
    changed = [
        {**same, "Address": "192.0.2.11"},
        {**same, "TaggedAddresses": {"lan": "192.0.2.11"}},
        {**same, "NodeMeta": {"r": "2"}},
        {**same, "ID": str(uuid.uuid4())},
        {**same, "Node": "brand-new"},
    ]
    for body in changed:
        _refused(call, "/v1/catalog/register", body, token, f"'node:write' on \"{body['Node']}\"")
    # SkipNodeUpdate leaves the stored node as it is, so a different address changes nothing.
    skipping = {**same, "Address": "192.0.2.11", "SkipNodeUpdate": True}
    assert call.ok("PUT", "/v1/catalog/register", skipping, token=token) is True
    assert call.ok("GET", "/v1/catalog/node/steady")["Node"]["Address"] == ADDRESS


def test_a_service_needs_write_on_itself_and_a_proxy_on_its_destination(call: Caller) -> None:
    call.ok("PUT", "/v1/catalog/register", _node("mesh"))
    proxy = {
        "Kind": "connect-proxy",
        "Service": "web-proxy",
        "Port": 21000,
        "Proxy": {"DestinationServiceName": "web"},
    }
    body = _node("mesh", Service=proxy)
    _refused(
        call,
        "/v1/catalog/register",
        body,
        _token(call, 'service "other" { policy = "write" }'),
        "'service:write' on \"web-proxy\"",
    )
    only_proxy = _token(call, 'service "web-proxy" { policy = "write" }')
    _refused(call, "/v1/catalog/register", body, only_proxy, "'service:write' on \"web\"")
    both = _token(call, 'service "web-proxy" { policy = "write" }\nservice "web" { policy = "write" }')
    assert call.ok("PUT", "/v1/catalog/register", body, token=both) is True


def test_reusing_a_service_id_needs_write_on_the_service_it_replaces(call: Caller) -> None:
    _seed(call, "shared", "billing")
    token = _token(call, 'service "mine" { policy = "write" }')
    body = _node("shared", Service={"ID": "billing", "Service": "mine"})
    _refused(call, "/v1/catalog/register", body, token, "'service:write' on \"billing\"")
    assert call.ok("GET", "/v1/catalog/node-services/shared")["Services"][0]["Service"] == "billing"


def test_each_check_is_vetted_by_what_it_belongs_to(call: Caller) -> None:
    _seed(call, "checked", "cache", "queue")
    cache = _token(call, 'service "cache" { policy = "write" }')
    register = "/v1/catalog/register"
    # Another node named in a check: refused, with Consul's message, whoever asks.
    elsewhere = _node("checked", Check={"Node": "other", "CheckID": "c1", "ServiceID": "cache"})
    for token in (cache, ROOT):
        status, answer, _ = call("PUT", register, elsewhere, token=token)
        assert (status, answer) == (
            400,
            "Node 'other' for check 'c1' doesn't match register request node 'checked'",
        )
    same_node = _node("checked", Check={"Node": "CHECKED", "CheckID": "c1", "ServiceID": "cache"})
    assert call.ok("PUT", register, same_node, token=cache) is True
    # A node-level check needs node:write.
    _refused(call, register, _node("checked", Check={"CheckID": "mem"}), cache, "'node:write' on \"checked\"")
    # A check on the service registered in the same request needs nothing more.
    fresh = _token(call, 'service "fresh" { policy = "write" }')
    with_service = _node(
        "checked", Service={"Service": "fresh"}, Checks=[{"CheckID": "f1", "ServiceID": "fresh"}]
    )
    assert call.ok("PUT", register, with_service, token=fresh) is True
    # Another service's check needs write on that service, found on the node by its ID.
    _refused(
        call,
        register,
        _node("checked", Check={"CheckID": "q1", "ServiceID": "queue"}),
        cache,
        "'service:write' on \"queue\"",
    )
    assert call.ok(
        "PUT", register, _node("checked", Check={"CheckID": "c2", "ServiceID": "cache"}), token=cache
    )
    # A service the node does not have: Consul's message, as a bad request.
    ghost = _node("checked", Check={"CheckID": "g1", "ServiceID": "ghost"})
    status, answer, _ = call("PUT", register, ghost, token=cache)
    assert (status, answer) == (400, "Unknown service ID 'ghost' for check ID 'g1'")
    # Writing over a stored check takes it over: its owner's grant is needed too.
    takeover = _node("checked", Check={"CheckID": "queue-alive", "ServiceID": "cache", "Status": "critical"})
    _refused(call, register, takeover, cache, "'service:write' on \"queue\"")
    assert _status(call, "checked", "queue-alive") == "passing"


def test_deregister_needs_node_write_or_write_on_what_it_removes(call: Caller) -> None:
    _seed(call, "leaving", "alpha", "beta")
    call.ok("PUT", "/v1/catalog/register", _node("leaving", Check={"CheckID": "load"}))
    alpha = _token(call, 'service "alpha" { policy = "write" }')
    path = "/v1/catalog/deregister"
    _refused(call, path, {"Node": "leaving", "ServiceID": "beta"}, alpha, "'service:write' on \"beta\"")
    _refused(call, path, {"Node": "leaving", "CheckID": "beta-alive"}, alpha, "'service:write' on \"beta\"")
    _refused(call, path, {"Node": "leaving", "CheckID": "load"}, alpha, "'node:write' on \"leaving\"")
    _refused(call, path, {"Node": "leaving"}, alpha, "'node:write' on \"leaving\"")
    for body, message in [
        ({"Node": "leaving", "ServiceID": "nope"}, "Unknown service ID 'nope'"),
        ({"Node": "leaving", "CheckID": "nope"}, "Unknown check ID 'nope'"),
    ]:
        assert call("PUT", path, body, token=alpha)[:2] == (400, message)
    # With a ServiceID, Consul ignores a CheckID: the beta check it names is kept.
    assert call.ok("PUT", path, {"Node": "leaving", "CheckID": "alpha-alive"}, token=alpha) is True
    assert call.ok(
        "PUT", path, {"Node": "leaving", "ServiceID": "alpha", "CheckID": "beta-alive"}, token=alpha
    )
    assert {c["CheckID"] for c in call.ok("GET", "/v1/health/node/leaving")} == {"beta-alive", "load"}
    # node:write alone removes any of it, whatever its services' grants.
    node = _token(call, 'node "leaving" { policy = "write" }')
    assert call.ok("PUT", path, {"Node": "leaving", "ServiceID": "beta"}, token=node) is True
    assert call.ok("PUT", path, {"Node": "leaving"}, token=node) is True
    assert call("GET", "/v1/catalog/node/leaving", token=ROOT)[1] is None


def test_txn_catalog_operations_are_vetted_as_consul_vets_them(call: Caller) -> None:
    _seed(call, "txn-node", "orders")
    orders = _token(call, 'service "orders" { policy = "write" }\nnode "txn-node" { policy = "read" }')
    flip = {"Node": "txn-node", "CheckID": "orders-alive", "ServiceID": "orders", "Status": "critical"}
    ops = [
        {"Service": {"Verb": "set", "Node": "txn-node", "Service": {"ID": "orders-2", "Service": "orders"}}},
        {"Check": {"Verb": "set", "Check": {**flip, "CheckID": "o2", "ServiceID": "orders-2"}}},
        {"Check": {"Verb": "set", "Check": flip}},
    ]
    status, answer, _ = call("PUT", "/v1/txn", ops, token=orders)
    assert status == 200, (status, answer)
    assert _status(call, "txn-node", "orders-alive") == "critical"
    refusals = [
        ({"Node": {"Verb": "set", "Node": _node("txn-node")}}, "'node:write' on \"txn-node\""),
        (
            {"Check": {"Verb": "set", "Check": {"Node": "txn-node", "CheckID": "cpu"}}},
            "'node:write' on \"txn-node\"",
        ),
        (
            {"Service": {"Verb": "delete", "Node": "txn-node", "Service": {"ID": "orders", "Service": "x"}}},
            "'service:write' on \"x\"",
        ),
        (
            {
                "Service": {
                    "Verb": "set",
                    "Node": "txn-node",
                    "Service": {"ID": "orders", "Service": "orders2"},
                }
            },
            "'service:write' on \"orders2\"",
        ),
    ]
    for op, grant in refusals:
        status, answer, _ = call("PUT", "/v1/txn", [op], token=orders)
        assert status == 409, (op, status, answer)
        assert f"lacks permission {grant}" in answer["Errors"][0]["What"], answer
    # Naming one's own service over another's ID needs write on the one stored there.
    mine = _token(call, 'service "x" { policy = "write" }')
    delete = {"Service": {"Verb": "delete", "Node": "txn-node", "Service": {"ID": "orders", "Service": "x"}}}
    status, answer, _ = call("PUT", "/v1/txn", [delete], token=mine)
    assert status == 409, (status, answer)
    assert "lacks permission 'service:write' on \"orders\"" in answer["Errors"][0]["What"], answer
    # Reads are not refused but filtered: a service the token cannot read drops out.
    _seed(call, "txn-node", "hidden")
    gets = [
        {"Service": {"Verb": "get", "Node": "txn-node", "Service": {"ID": "orders"}}},
        {"Service": {"Verb": "get", "Node": "txn-node", "Service": {"ID": "hidden"}}},
        {"Node": {"Verb": "get", "Node": {"Node": "txn-node"}}},
    ]
    status, answer, headers = call("PUT", "/v1/txn", gets, token=orders)
    assert status == 200, (status, answer)
    assert [next(iter(r)) for r in answer["Results"]] == ["Service", "Node"]
    assert answer["Results"][0]["Service"]["ID"] == "orders"
    # Consul's txn handler sends only its leader and last-contact headers, even when it filtered.
    assert headers.get("X-Consul-Results-Filtered-By-ACLs") is None
