"""/v1/acl against real agents: bootstrap once, token/policy/role CRUD, token sources,
bad input with Consul's messages, and that a bad token learns nothing about what exists."""

from __future__ import annotations

import base64
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import consul
import pytest

from acl_kit import ROOT, Caller, start_acl_agent
from waypost.api.acl import REPLICATION_STATUS
from waypost.testing import AgentProcess

NOT_FOUND = (403, "ACL not found")


def test_acl_routes_answer_401_while_acls_are_off(dev_agent: AgentProcess) -> None:
    off = Caller(dev_agent)
    for method, path in [
        ("PUT", "/v1/acl/bootstrap"),
        ("GET", "/v1/acl/tokens"),
        ("GET", "/v1/acl/policy/x"),
        ("GET", "/v1/acl/replication"),
    ]:
        status, body, _ = off(method, path)
        assert (status, body) == (401, "ACL support disabled")


def test_replication_status_needs_no_token(call: Caller) -> None:
    status, body, _ = call("GET", "/v1/acl/replication")
    assert status == 200
    assert body == REPLICATION_STATUS
    assert (body["Enabled"], body["Running"]) == (False, False)


def test_bootstrap_once_then_403_with_the_reset_index(tmp_path: Path) -> None:
    config = tmp_path / "acl.hcl"
    config.write_text('acl { enabled = true\n default_policy = "deny" }')
    with AgentProcess(["-dev", "-config-file", str(config)], log_path=tmp_path / "log") as agent:
        call = Caller(agent)
        status, token, _ = call("PUT", "/v1/acl/bootstrap")
        assert status == 200
        assert token["Policies"] == [
            {"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}
        ]
        assert (
            call.ok("GET", "/v1/acl/token/self", token=token["SecretID"])["AccessorID"] == token["AccessorID"]
        )
        status, body, _ = call("PUT", "/v1/acl/bootstrap")
        assert status == 403
        assert body.startswith("Permission denied: ACL bootstrap no longer allowed (reset index: ")


def test_token_crud_self_clone_list(call: Caller) -> None:
    policy = call.ok("PUT", "/v1/acl/policy", {"Name": "crud-p", "Rules": 'key "a" { policy = "read" }'})
    created = call.ok("PUT", "/v1/acl/token", {"Description": "t1", "Policies": [{"ID": policy["ID"]}]})
    assert created["Policies"] == [{"ID": policy["ID"], "Name": "crud-p"}]
    accessor, secret = created["AccessorID"], created["SecretID"]
    assert call.ok("GET", f"/v1/acl/token/{accessor}")["Description"] == "t1"
    assert call.ok("GET", "/v1/acl/token/self", token=secret)["AccessorID"] == accessor
    updated = call.ok(
        "PUT", f"/v1/acl/token/{accessor}", {"Description": "t2", "Policies": [{"Name": "crud-p"}]}
    )
    assert (updated["Description"], updated["SecretID"]) == ("t2", secret)
    clone = call.ok("PUT", f"/v1/acl/token/{accessor}/clone", {"Description": "copy"})
    assert clone["Policies"] == created["Policies"]
    assert clone["SecretID"] != secret
    listed = {t["AccessorID"] for t in call.ok("GET", f"/v1/acl/tokens?policy={policy['ID']}")}
    assert listed == {accessor, clone["AccessorID"]}
    assert call.ok("DELETE", f"/v1/acl/token/{accessor}") is True
    assert call("GET", f"/v1/acl/token/{accessor}", token=ROOT)[:2] == NOT_FOUND
    assert call("GET", "/v1/acl/token/self", token=secret)[:2] == NOT_FOUND


def test_policy_and_role_crud(call: Caller) -> None:
    policy = call.ok("PUT", "/v1/acl/policy", {"Name": "pr", "Rules": "", "Description": "d"})
    assert call.ok("GET", "/v1/acl/policy/name/pr")["ID"] == policy["ID"]
    renamed = call.ok("PUT", f"/v1/acl/policy/{policy['ID']}", {"Name": "pr2", "Rules": 'operator = "read"'})
    assert renamed["Rules"] == 'operator = "read"'
    assert "Rules" not in call.ok("GET", "/v1/acl/policies")[0]
    role = call.ok("PUT", "/v1/acl/role", {"Name": "r1", "Policies": [{"Name": "pr2"}]})
    assert call.ok("GET", "/v1/acl/role/name/r1")["ID"] == role["ID"]
    assert call.ok("GET", f"/v1/acl/role/{role['ID']}")["Policies"] == [{"ID": policy["ID"], "Name": "pr2"}]
    assert [r["Name"] for r in call.ok("GET", "/v1/acl/roles")] == ["r1"]
    token = call.ok("PUT", "/v1/acl/token", {"Roles": [{"Name": "r1"}]})
    assert call("GET", "/v1/operator/raft/configuration", token=token["SecretID"])[0] == 200
    assert call.ok("DELETE", f"/v1/acl/role/{role['ID']}") is True
    assert call("GET", f"/v1/acl/role/{role['ID']}", token=ROOT)[:2] == NOT_FOUND
    assert call.ok("DELETE", f"/v1/acl/policy/{policy['ID']}") is True
    assert call("GET", "/v1/acl/policy/name/pr2", token=ROOT)[:2] == NOT_FOUND


def test_token_from_header_bearer_or_query(call: Caller) -> None:
    assert call("GET", "/v1/acl/tokens", headers={"Authorization": f"Bearer {ROOT}"})[0] == 200
    assert call("GET", f"/v1/acl/tokens?token={ROOT}")[0] == 200
    assert call("GET", "/v1/acl/tokens")[0] == 403


def test_bad_input_gets_400_naming_the_problem(call: Caller) -> None:
    cases = [
        ("/v1/acl/policy", {"Name": "bad", "Rules": 'key "a" {\n  policy = "sometimes"\n}'}, "(line 2)"),
        ("/v1/acl/policy", {"Name": "bad", "Rules": 'key "a" {\n\n policy "read" }'}, "At 3:16"),
        ("/v1/acl/policy", {"Name": "", "Rules": ""}, "Invalid Policy: no Name is set"),
        ("/v1/acl/policy", {"Name": "a b"}, "invalid Name"),
        ("/v1/acl/policy", {"Name": "x", "Colour": 1}, 'unknown field "Colour"'),
        ("/v1/acl/token", {"ExpirationTTL": "30s"}, "should be between 1m0s and 24h0m0s"),
        ("/v1/acl/token", {"ExpirationTTL": "soon"}, "ExpirationTTL"),
        (
            "/v1/acl/token",
            {"ExpirationTime": "tomorrow"},
            "ExpirationTime 'tomorrow' is not an RFC 3339 time",
        ),
        (
            "/v1/acl/token",
            {"ExpirationTime": "2020-01-01T00:00:00Z"},
            "between 1m0s and 24h0m0s in the future",
        ),
        ("/v1/acl/token", {"ExpirationTime": "2030-01-01T00:00:00"}, "has no time zone"),
        ("/v1/acl/token", {"ExpirationTTL": "1m", "ExpirationTime": "x"}, "cannot both be set"),
        ("/v1/acl/token", {"Description": 7}, "Invalid Token: Description"),
        ("/v1/acl/token", {"Policies": [{"ID": 1}]}, "Invalid Token: Policies"),
        ("/v1/acl/policy", {"Name": "x", "Rules": ["a"]}, "Invalid Policy: Rules"),
        ("/v1/acl/token", {"Policies": [{"Name": "missing"}]}, "Policy with Name 'missing' not found"),
        ("/v1/acl/token", {"SecretID": "not-a-uuid"}, "SecretID 'not-a-uuid' is not a UUID"),
        ("/v1/acl/role", {"Name": "r", "Policies": "x"}, "Invalid Role: Policies"),
    ]
    for path, body, message in cases:
        status, text, _ = call("PUT", path, body, token=ROOT)
        assert status == 400, (body, text)
        assert message in text, (body, text)
    call.ok("PUT", "/v1/acl/policy", {"Name": "dupe"})
    status, text, _ = call("PUT", "/v1/acl/policy", {"Name": "dupe"}, token=ROOT)
    assert (status, "already exists" in text) == (400, True)


def test_a_bad_token_never_reveals_whether_something_exists(call: Caller) -> None:
    call.ok("PUT", "/v1/kv/secret/present", "x")
    real = call.ok("PUT", "/v1/acl/token", {"Description": "probe target"})["AccessorID"]
    weak = call.token_for('key "public" { policy = "read" }', "weak")
    for token in (str(uuid.uuid4()), weak, ""):
        present = call("GET", "/v1/kv/secret/present", token=token)[:2]
        absent = call("GET", "/v1/kv/secret/absent", token=token)[:2]
        assert present[0] == absent[0] == 403
        assert present[1].replace("present", "absent") == absent[1]
        assert (
            call("GET", f"/v1/acl/token/{real}", token=token)[:2]
            == call("GET", f"/v1/acl/token/{uuid.uuid4()}", token=token)[:2]
        )


def test_a_deleted_policy_stops_granting_within_a_second(call: Caller) -> None:
    policy = call.ok(
        "PUT", "/v1/acl/policy", {"Name": "short-lived", "Rules": 'key "k" { policy = "write" }'}
    )
    secret = call.ok("PUT", "/v1/acl/token", {"Policies": [{"ID": policy["ID"]}]})["SecretID"]
    assert call("PUT", "/v1/kv/k", "v", token=secret)[0] == 200
    call.ok("DELETE", f"/v1/acl/policy/{policy['ID']}")
    deadline = time.monotonic() + 1.0
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = call("PUT", "/v1/kv/k", "v", token=secret)[0]
        time.sleep(0.02)
    assert status == 403


def test_an_expiring_token_is_accepted_with_a_minute_ttl(call: Caller) -> None:
    token = call.ok("PUT", "/v1/acl/token", {"ExpirationTTL": "1m"})
    assert token["ExpirationTime"].endswith("Z")
    when = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
    assert call.ok("PUT", "/v1/acl/token", {"ExpirationTime": when})["ExpirationTime"].endswith("Z")
    assert call.ok("GET", "/v1/acl/token/self", token=token["SecretID"])["AccessorID"] == token["AccessorID"]


def test_py_consul_acl_calls(acl_agent: AgentProcess) -> None:
    c = consul.Consul(port=acl_agent.http_port, token=ROOT)
    policy = c.acl.policy.create(name="pyc", rules={"service_prefix": {"": {"policy": "read"}}})
    assert c.acl.policy.read(policy["ID"])["Name"] == "pyc"
    assert "pyc" in {p["Name"] for p in c.acl.policy.list()}
    role = c.acl.role.create(name="pyc-role", policies_name=["pyc"])
    assert c.acl.role.read_by_name("pyc-role")["ID"] == role["ID"]
    token = c.acl.token.create(description="pyc", policies_name=["pyc"], roles_id=[role["ID"]])
    assert c.acl.token.read(token["AccessorID"])["Description"] == "pyc"
    assert c.acl.token.read_self(token=token["SecretID"])["AccessorID"] == token["AccessorID"]
    cloned = c.acl.token.clone(token["AccessorID"], description="copy")
    assert cloned["Description"] == "copy"
    assert token["AccessorID"] in {t["AccessorID"] for t in c.acl.token.list()}
    updated = c.acl.token.update(token["AccessorID"], description="renamed", policies_name=["pyc"])
    assert updated["Description"] == "renamed"
    assert c.acl.token.delete(cloned["AccessorID"]) is True
    assert c.acl.role.delete(role["ID"]) is True
    assert c.acl.policy.delete(policy["ID"]) is True
    with pytest.raises(consul.ACLPermissionDenied, match="ACL bootstrap no longer allowed"):
        c.acl.bootstrap()


def test_agent_token_endpoint_sets_the_default_token(tmp_path: Path) -> None:
    with start_acl_agent(tmp_path) as agent:
        call = Caller(agent)
        reader = call.token_for('node_prefix "" { policy = "read" }', "nodes")
        assert call("GET", "/v1/catalog/nodes")[1] == []
        assert call("PUT", "/v1/agent/token/default", {"Token": reader}, token=ROOT)[0] == 200
        assert [n["Node"] for n in call("GET", "/v1/catalog/nodes")[1]] == ["acl-node"]
        assert call("PUT", "/v1/agent/token/bogus", {"Token": "x"}, token=ROOT)[0] == 404


def test_kv_lists_are_filtered_and_a_fully_filtered_recurse_is_404(call: Caller) -> None:
    for key in ("shared/open/a", "shared/open/b", "shared/closed/c"):
        call.ok("PUT", f"/v1/kv/{key}", "v")
    reader = call.token_for('key_prefix "shared/open/" { policy = "read" }', "kv-lists")
    status, rows, headers = call("GET", "/v1/kv/shared/?recurse", token=reader)
    assert status == 200
    assert [r["Key"] for r in rows] == ["shared/open/a", "shared/open/b"]
    assert headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    status, keys, headers = call("GET", "/v1/kv/shared/?keys", token=reader)
    assert (status, keys) == (200, ["shared/open/a", "shared/open/b"])
    assert headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    status, _, headers = call("GET", "/v1/kv/shared/closed/?recurse", token=reader)
    assert status == 404
    assert headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    status, rows, headers = call("GET", "/v1/kv/shared/open/?recurse", token=reader)
    assert len(rows) == 2
    assert "X-Consul-Results-Filtered-By-ACLs" not in headers
    deleter = call.token_for(
        'key_prefix "shared/" { policy = "write" }\nkey "shared/closed/c" { policy = "read" }', "kv-del"
    )
    assert call("DELETE", "/v1/kv/shared/?recurse", token=deleter)[0] == 403
    assert call("DELETE", "/v1/kv/shared/open/?recurse", token=deleter)[0] == 200


def test_reads_report_the_default_policy(call: Caller) -> None:
    assert call("GET", "/v1/catalog/nodes")[2]["X-Consul-Default-Acl-Policy"] == "deny"


def test_acl_data_is_in_snapshots(call: Caller) -> None:
    policy = call.ok("PUT", "/v1/acl/policy", {"Name": "kept", "Rules": 'key "kept" { policy = "read" }'})
    status, archive, _ = call.raw("GET", "/v1/snapshot", None, ROOT)
    assert status == 200
    call.ok("DELETE", f"/v1/acl/policy/{policy['ID']}")
    assert call.raw("PUT", "/v1/snapshot", archive, ROOT)[0] == 200
    restored = call.ok("GET", "/v1/acl/policy/name/kept")
    assert restored["ID"] == policy["ID"]
    indexes = ("CreateIndex", "ModifyIndex")
    assert [restored[k] for k in indexes] == [policy[k] for k in indexes]


def test_links_show_current_names_and_drop_deleted_policies(call: Caller) -> None:
    policy = call.ok("PUT", "/v1/acl/policy", {"Name": "before"})
    kept = call.ok("PUT", "/v1/acl/policy", {"Name": "kept-link"})
    role = call.ok("PUT", "/v1/acl/role", {"Name": "linking", "Policies": [{"ID": policy["ID"]}]})
    links = [{"ID": policy["ID"]}, {"ID": kept["ID"]}]
    token = call.ok("PUT", "/v1/acl/token", {"Policies": links})
    call.ok("PUT", f"/v1/acl/policy/{policy['ID']}", {"Name": "after"})
    read = call.ok("GET", f"/v1/acl/token/{token['AccessorID']}")
    assert [p["Name"] for p in read["Policies"]] == ["after", "kept-link"]
    assert call.ok("GET", f"/v1/acl/role/{role['ID']}")["Policies"][0]["Name"] == "after"
    call.ok("DELETE", f"/v1/acl/policy/{policy['ID']}")
    read = call.ok("GET", f"/v1/acl/token/{token['AccessorID']}")
    assert read["Policies"] == [{"ID": kept["ID"], "Name": "kept-link"}]
    assert "Policies" not in call.ok("GET", f"/v1/acl/role/{role['ID']}")


def test_token_and_policy_reads_are_blocking_queries(call: Caller) -> None:
    """Consul's ACL lists and reads block on ?index, so the UI's tokens and policies views
    stay live; a blocked read of a policy deleted meanwhile answers "ACL not found"."""
    policy = call.ok("PUT", "/v1/acl/policy", {"Name": "watched"})
    status, _, headers = call("GET", "/v1/acl/tokens", token=ROOT)
    index = int(headers["X-Consul-Index"])
    status, _, headers = call("GET", f"/v1/acl/policy/{policy['ID']}", token=ROOT)
    policy_index = int(headers["X-Consul-Index"])
    with ThreadPoolExecutor(2) as pool:
        tokens = pool.submit(call, "GET", f"/v1/acl/tokens?index={index}&wait=20s", None, ROOT)
        read = pool.submit(
            call, "GET", f"/v1/acl/policy/{policy['ID']}?index={policy_index}&wait=20s", None, ROOT
        )
        time.sleep(0.3)
        created = call.ok("PUT", "/v1/acl/token", {"Description": "woke the list"})
        call.ok("DELETE", f"/v1/acl/policy/{policy['ID']}")
        status, rows, headers = tokens.result(timeout=30)
        assert status == 200
        assert int(headers["X-Consul-Index"]) > index
        assert created["AccessorID"] in [row["AccessorID"] for row in rows]
        assert read.result(timeout=30)[:2] == NOT_FOUND


def test_blocking_token_reads_still_hide_secrets_per_caller(call: Caller) -> None:
    reader = call.token_for('acl = "read"', "acl-reader")
    created = call.ok("PUT", "/v1/acl/token", {"Description": "secret kept"})
    assert call.ok("GET", f"/v1/acl/token/{created['AccessorID']}")["SecretID"] == created["SecretID"]
    assert call.ok("GET", f"/v1/acl/token/{created['AccessorID']}", token=reader)["SecretID"] == "<hidden>"
    assert call.ok("GET", "/v1/acl/tokens")[-1]["SecretID"] == created["SecretID"]
    assert call.ok("GET", "/v1/acl/tokens", token=reader)[-1]["SecretID"] == "<hidden>"


def test_a_refused_restore_is_answered_before_its_body_is_taken(
    acl_agent: AgentProcess, call: Caller
) -> None:
    """A snapshot body goes to disk uncapped, so the token is checked on the request's head:
    a caller without one is refused at once, never after writing gigabytes to a file."""
    for token in ("", call.token_for('key_prefix "" { policy = "write" }', "no-restore")):
        with socket.create_connection(("127.0.0.1", acl_agent.http_port), timeout=10) as sock:
            head = f"PUT /v1/snapshot HTTP/1.1\r\nHost: agent\r\nX-Consul-Token: {token}\r\n"
            sock.sendall(f"{head}Content-Length: {10**12}\r\n\r\n".encode())
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 403 "), answer
        assert b"Permission denied" in answer, answer


def test_a_txn_is_checked_as_the_handler_reads_it(call: Caller) -> None:
    """The check reads the operations the handler runs: Go's client sends the unused kinds
    as null, and field names match case-blind, so neither may slip past it."""
    value = base64.b64encode(b"stolen").decode()
    shapes = [
        [{"KV": {"Verb": "set", "Key": "txn-secret/go", "Value": value}, "Node": None, "Service": None}],
        [{"kv": {"verb": "set", "key": "txn-secret/lower", "value": value}}],
        [{"KV": {"Verb": "delete-tree", "Key": "txn-secret/"}, "Check": None, "Session": None}],
    ]
    call.ok("PUT", "/v1/kv/txn-secret/kept", "kept")
    writer = call.token_for('key_prefix "txn-secret/allowed" { policy = "write" }', "txn-narrow")
    for token in (None, writer):
        for ops in shapes:
            status, answer, _ = call("PUT", "/v1/txn", ops, token=token)
            assert status == 409, (ops, status, answer)
            assert "Permission denied" in answer["Errors"][0]["What"]
    assert call("GET", "/v1/kv/txn-secret/?keys", token=ROOT)[1] == ["txn-secret/kept"]


def test_txn_kv_reads_are_filtered_and_kv_checks_vetted_as_consul_does(call: Caller) -> None:
    """Consul's kvsPreApply: get and get-tree are not refused, their results are dropped
    unless the key is readable; check-index and check-session need key read; every other
    verb, check-not-exists included, needs key write."""
    call.ok("PUT", "/v1/kv/txn-filter/open", "o")
    call.ok("PUT", "/v1/kv/txn-filter/shut", "s")
    reader = call.token_for('key "txn-filter/open" { policy = "read" }', "txn-filter-read")
    gets = [
        {"KV": {"Verb": "get", "Key": "txn-filter/open"}},
        {"KV": {"Verb": "get", "Key": "txn-filter/shut"}},
        {"KV": {"Verb": "get-tree", "Key": "txn-filter/"}},
    ]
    status, answer, headers = call("PUT", "/v1/txn", gets, token=reader)
    assert status == 200, (status, answer)
    assert [r["KV"]["Key"] for r in answer["Results"]] == ["txn-filter/open", "txn-filter/open"]
    assert headers.get("X-Consul-Results-Filtered-By-ACLs") is None
    status, answer, _ = call("PUT", "/v1/txn", gets, token=None)
    assert (status, answer["Results"], answer["Errors"]) == (200, [], None)
    assert len(call("PUT", "/v1/txn", gets, token=ROOT)[1]["Results"]) == 4
    index = call("GET", "/v1/kv/txn-filter/open", token=ROOT)[1][0]["ModifyIndex"]
    checked = [
        {"KV": {"Verb": "check-index", "Key": "txn-filter/open", "Index": index}},
        {"KV": {"Verb": "check-session", "Key": "txn-filter/open"}},
    ]
    status, answer, _ = call("PUT", "/v1/txn", checked, token=reader)
    assert (status, len(answer["Results"])) == (200, 2), (status, answer)
    for op in (
        {"KV": {"Verb": "check-index", "Key": "txn-filter/shut", "Index": index}},
        {"KV": {"Verb": "check-not-exists", "Key": "txn-filter/none"}},
        {"KV": {"Verb": "check-not-exists", "Key": "txn-filter/open"}},
    ):
        status, answer, _ = call("PUT", "/v1/txn", [op], token=reader)
        assert status == 409, (op, status, answer)
        assert "Permission denied" in answer["Errors"][0]["What"], (op, answer)
    writer = call.token_for('key "txn-filter/none" { policy = "write" }', "txn-filter-write")
    none = [{"KV": {"Verb": "check-not-exists", "Key": "txn-filter/none"}}]
    assert call("PUT", "/v1/txn", none, token=writer)[0] == 200


def test_connect_reads_need_the_fronted_service_readable(call: Caller) -> None:
    """Consul's catalog and health Connect reads answer nothing unless the token may read
    the service the proxies front, however readable the proxies themselves are."""
    proxy = {"DestinationServiceName": "fronted"}
    call.ok("PUT", "/v1/catalog/register", {
        "Node": "mesh-node", "Address": "192.0.2.20",
        "Service": {"ID": "fronted-proxy", "Service": "fronted-proxy", "Kind": "connect-proxy", "Port": 21000,
                    "Proxy": proxy},
    })  # fmt: skip
    nodes = 'node_prefix "" { policy = "read" }'
    proxies_only = call.token_for(
        f'{nodes}\nservice "fronted-proxy" {{ policy = "read" }}', "connect-proxies"
    )
    both = call.token_for(
        f'{nodes}\nservice "fronted-proxy" {{ policy = "read" }}\nservice "fronted" {{ policy = "read" }}',
        "connect-both",
    )
    for path in ("/v1/catalog/connect/fronted", "/v1/health/connect/fronted"):
        status, rows, _ = call("GET", path, token=proxies_only)
        assert (status, rows) == (200, []), (path, status, rows)
        status, rows, _ = call("GET", path, token=both)
        assert (status, len(rows)) == (200, 1), (path, status, rows)
