"""/v1/txn against a real agent: every verb of every kind, atomic rollback, Consul's shapes."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import consul
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcd_cluster import etcd_available, etcd_cluster
from waypost.testing import AgentProcess, wait_for


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def txn(agent: AgentProcess, ops: list[Any], query: str = "") -> tuple[int, dict[str, str], Any]:
    status, headers, body = agent.request("PUT", "/v1/txn" + query, json.dumps(ops).encode())
    try:
        return status, headers, json.loads(body)
    except ValueError:
        return status, headers, body.decode()


def ok(agent: AgentProcess, ops: list[Any]) -> list[dict[str, Any]]:
    status, _, body = txn(agent, ops)
    assert status == 200, body
    assert body["Errors"] is None
    results: list[dict[str, Any]] = body["Results"]
    return results


def failed(agent: AgentProcess, ops: list[Any]) -> list[tuple[int, str]]:
    status, headers, body = txn(agent, ops)
    assert status == 409, body
    assert headers["Content-Type"].startswith("application/json")
    assert body["Results"] is None
    return [(e["OpIndex"], e["What"]) for e in body["Errors"]]


def kv(verb: str, key: str, **fields: Any) -> dict[str, Any]:
    return {"KV": {"Verb": verb, "Key": key, **fields}}


def node_op(verb: str, **node: Any) -> dict[str, Any]:
    return {"Node": {"Verb": verb, "Node": node}}


def service_op(verb: str, node: str, **service: Any) -> dict[str, Any]:
    return {"Service": {"Verb": verb, "Node": node, "Service": service}}


def check_op(verb: str, **check: Any) -> dict[str, Any]:
    return {"Check": {"Verb": verb, "Check": check}}


def session(agent: AgentProcess, **body: Any) -> str:
    sid: str = agent.put("/v1/session/create", {"Node": "test-node", **body})["ID"]
    return sid


def kv_get(agent: AgentProcess, key: str) -> dict[str, Any] | None:
    status, _, body = agent.request("GET", f"/v1/kv/{key}")
    if status == 404:
        return None
    entry: dict[str, Any] = json.loads(body)[0]
    return entry


# -- KV ------------------------------------------------------------------------------


def test_kv_writes_answer_without_values_and_reads_with_them(dev_agent: AgentProcess) -> None:
    results = ok(
        dev_agent,
        [
            kv("set", "kvw/a", Value=b64("1"), Flags=7),
            kv("cas", "kvw/b", Value=b64("2"), Index=0),
            kv("get", "kvw/a"),
            kv("get-tree", "kvw/"),
        ],
    )
    assert [r["KV"]["Key"] for r in results] == ["kvw/a", "kvw/b", "kvw/a", "kvw/a", "kvw/b"]
    assert [r["KV"]["Value"] for r in results] == [None, None, b64("1"), b64("1"), b64("2")]
    assert results[0]["KV"]["Flags"] == 7
    stored = kv_get(dev_agent, "kvw/a")
    assert stored is not None
    # Every write of one transaction carries the transaction's index, as Consul's do.
    assert {r["KV"]["ModifyIndex"] for r in results} == {stored["ModifyIndex"]}
    assert stored["CreateIndex"] == results[0]["KV"]["CreateIndex"]


def test_cas_and_check_index(dev_agent: AgentProcess) -> None:
    index = ok(dev_agent, [kv("set", "cas/k", Value=b64("v1"))])[0]["KV"]["ModifyIndex"]
    assert failed(dev_agent, [kv("cas", "cas/k", Value=b64("x"), Index=0)]) == [
        (0, 'failed to set key "cas/k", index is stale')
    ]
    assert failed(dev_agent, [kv("cas", "cas/k", Value=b64("x"), Index=index + 1000)]) == [
        (0, 'failed to set key "cas/k", index is stale')
    ]
    assert failed(dev_agent, [kv("check-index", "cas/k", Index=index + 1000)]) == [
        (0, f'failed index check for key "cas/k", current modify index {index} != {index + 1000}')
    ]
    assert failed(dev_agent, [kv("check-index", "cas/none", Index=1)]) == [
        (0, 'failed to check index, key "cas/none" doesn\'t exist')
    ]
    results = ok(
        dev_agent, [kv("check-index", "cas/k", Index=index), kv("cas", "cas/k", Value=b64("v2"), Index=index)]
    )
    assert results[0]["KV"]["Value"] is None
    assert results[0]["KV"]["ModifyIndex"] == index
    assert kv_get(dev_agent, "cas/k")["Value"] == b64("v2")  # type: ignore[index]


def test_get_check_not_exists_and_get_or_empty(dev_agent: AgentProcess) -> None:
    ok(dev_agent, [kv("set", "ge/here", Value=b64("x"))])
    assert failed(dev_agent, [kv("get", "ge/missing"), kv("check-not-exists", "ge/here")]) == [
        (0, 'key "ge/missing" doesn\'t exist'),
        (1, 'key "ge/here" exists'),
    ]
    results = ok(dev_agent, [kv("check-not-exists", "ge/missing"), kv("get-or-empty", "ge/missing")])
    assert results == [
        {
            "KV": {
                "LockIndex": 0,
                "Key": "ge/missing",
                "Flags": 0,
                "Value": None,
                "CreateIndex": 0,
                "ModifyIndex": 0,
            }
        }
    ]


def test_delete_verbs(dev_agent: AgentProcess) -> None:
    results = ok(dev_agent, [kv("set", f"del/{n}", Value=b64(n)) for n in ("a", "b", "c", "t/1", "t/2")])
    index_b = results[1]["KV"]["ModifyIndex"]
    assert failed(dev_agent, [kv("delete-cas", "del/b", Index=index_b + 1000)]) == [
        (0, 'failed to delete key "del/b", index is stale')
    ]
    results = ok(
        dev_agent,
        [
            kv("delete", "del/a"),
            kv("delete-cas", "del/b", Index=index_b),
            kv("delete-cas", "del/never", Index=5),
            kv("delete-tree", "del/t/"),
        ],
    )
    assert results == []
    status, _, body = dev_agent.request("GET", "/v1/kv/del/?recurse")
    assert status == 200
    assert [e["Key"] for e in json.loads(body)] == ["del/c"]


def test_one_key_written_twice_is_one_store_write(dev_agent: AgentProcess) -> None:
    """etcd refuses two operations on one key in a transaction; the last state wins."""
    results = ok(
        dev_agent,
        [
            kv("set", "twice/k", Value=b64("1")),
            kv("set", "twice/k", Value=b64("2")),
            kv("get", "twice/k"),
            kv("delete", "twice/gone"),
            kv("set", "twice/gone", Value=b64("x")),
            kv("delete", "twice/gone"),
        ],
    )
    assert results[2]["KV"]["Value"] == b64("2")
    assert kv_get(dev_agent, "twice/k")["Value"] == b64("2")  # type: ignore[index]
    assert kv_get(dev_agent, "twice/gone") is None


def test_lock_unlock_and_check_session(dev_agent: AgentProcess) -> None:
    sid, other = session(dev_agent), session(dev_agent)
    results = ok(
        dev_agent,
        [kv("lock", "lk/k", Value=b64("held"), Session=sid), kv("check-session", "lk/k", Session=sid)],
    )
    assert results[0]["KV"]["Session"] == sid
    assert results[0]["KV"]["LockIndex"] == 1
    assert failed(dev_agent, [kv("lock", "lk/k", Session=other), kv("unlock", "lk/k", Session=other)]) == [
        (0, 'failed to lock key "lk/k", lock is already held'),
        (1, 'failed to unlock key "lk/k", lock isn\'t held, or is held by another session'),
    ]
    assert failed(dev_agent, [kv("check-session", "lk/k", Session=other)]) == [
        (0, f'failed session check for key "lk/k", current session "{sid}" != "{other}"')
    ]
    assert failed(dev_agent, [kv("lock", "lk/x", Session="not-a-session"), kv("lock", "lk/y")]) == [
        (0, 'invalid session "not-a-session"'),
        (1, "missing session"),
    ]
    results = ok(dev_agent, [kv("unlock", "lk/k", Value=b64("free"), Session=sid)])
    assert "Session" not in results[0]["KV"]
    assert results[0]["KV"]["LockIndex"] == 1
    assert kv_get(dev_agent, "lk/k")["Value"] == b64("free")  # type: ignore[index]


def test_key_is_required(dev_agent: AgentProcess) -> None:
    assert failed(dev_agent, [kv("set", "", Value=b64("x")), kv("get", "")]) == [
        (0, "Must provide key"),
        (1, "Must provide key"),
    ]


def test_unknown_verbs_are_reported_per_operation(dev_agent: AgentProcess) -> None:
    assert failed(
        dev_agent,
        [
            kv("explode", "uv/k"),
            node_op("explode", Node="n"),
            service_op("explode", "n", ID="s", Service="s"),
            check_op("explode", Node="n", CheckID="c"),
            {"Session": {"Verb": "explode", "Session": {"ID": "x"}}},
        ],
    ) == [
        (0, 'unknown KV verb "explode"'),
        (1, 'unknown Node verb "explode"'),
        (2, 'unknown Service verb "explode"'),
        (3, 'unknown Check verb "explode"'),
        (4, 'failed to delete session: unknown Session verb "explode"'),
    ]


# -- catalog ---------------------------------------------------------------------------


def test_catalog_set_and_get(dev_agent: AgentProcess) -> None:
    results = ok(
        dev_agent,
        [
            node_op("set", Node="cat-1", Address="192.0.2.1", Meta={"rack": "r1"}),
            service_op("set", "cat-1", ID="web-1", Service="web", Port=8080, Tags=["v1"]),
            check_op(
                "set", Node="cat-1", CheckID="web-up", Name="web up", Status="passing", ServiceID="web-1"
            ),
            node_op("get", Node="cat-1"),
        ],
    )
    assert [next(iter(r)) for r in results] == ["Node", "Service", "Check", "Node"]
    node, service, check = results[0]["Node"], results[1]["Service"], results[2]["Check"]
    assert (node["Node"], node["Address"], node["Meta"], node["Datacenter"]) == (
        "cat-1",
        "192.0.2.1",
        {"rack": "r1"},
        "dc1",
    )
    assert (service["ID"], service["Service"], service["Port"], service["Tags"]) == (
        "web-1",
        "web",
        8080,
        ["v1"],
    )
    # A service's check carries the service's name and tags, as Consul stores it.
    assert (check["ServiceName"], check["ServiceTags"], check["Status"]) == ("web", ["v1"], "passing")
    assert node["ModifyIndex"] == service["ModifyIndex"] == check["ModifyIndex"] > 0
    # Records answer in the shapes Consul's reads give them.
    listed = dev_agent.get("/v1/catalog/node-services/cat-1")
    assert (node, service) == (listed["Node"], listed["Services"][0])
    assert check == dev_agent.get("/v1/health/node/cat-1")[0]
    entries = dev_agent.get("/v1/health/service/web?passing")
    assert [(e["Node"]["Node"], e["Service"]["ID"]) for e in entries] == [("cat-1", "web-1")]
    results = ok(
        dev_agent,
        [
            service_op("get", "cat-1", ID="web-1"),
            check_op("get", Node="cat-1", CheckID="web-up"),
        ],
    )
    assert results[0]["Service"]["Port"] == 8080
    assert results[1]["Check"]["Name"] == "web up"


def test_service_weights_are_kept_as_given(dev_agent: AgentProcess) -> None:
    """Go's client sends zero weights; Consul checks weights only for agent services."""
    ok(dev_agent, [node_op("set", Node="w-n", Address="192.0.2.60")])
    results = ok(
        dev_agent, [service_op("set", "w-n", ID="w", Service="w", Weights={"Passing": 0, "Warning": 0})]
    )
    assert results[0]["Service"]["Weights"] == {"Passing": 0, "Warning": 0}


def test_catalog_gets_of_missing_records(dev_agent: AgentProcess) -> None:
    assert failed(
        dev_agent,
        [
            node_op("get", Node="nowhere"),
            service_op("get", "nowhere", ID="svc"),
            check_op("get", Node="nowhere", CheckID="chk"),
        ],
    ) == [
        (0, 'node "nowhere" doesn\'t exist'),
        (1, 'service "svc" on node "nowhere" doesn\'t exist'),
        (2, 'check "chk" on node "nowhere" doesn\'t exist'),
    ]


def test_node_get_by_id_takes_precedence(dev_agent: AgentProcess) -> None:
    node_id = "5b6a1b36-2d1e-4c8e-9b37-54d3c0c2a001"
    ok(dev_agent, [node_op("set", ID=node_id, Node="by-id", Address="192.0.2.9")])
    results = ok(dev_agent, [node_op("get", ID=node_id, Node="some-other-name")])
    assert results[0]["Node"]["Node"] == "by-id"


def test_catalog_cas_verbs(dev_agent: AgentProcess) -> None:
    results = ok(
        dev_agent,
        [
            node_op("cas", Node="cas-n", Address="192.0.2.2", ModifyIndex=0),
            service_op("cas", "cas-n", ID="db", Service="db", ModifyIndex=0),
            check_op("cas", Node="cas-n", CheckID="alive", Name="alive", ModifyIndex=0),
        ],
    )
    index = results[0]["Node"]["ModifyIndex"]
    assert results[2]["Check"]["Status"] == "critical"
    stale = index + 1000
    assert failed(
        dev_agent,
        [
            node_op("cas", Node="cas-n", Address="192.0.2.3", ModifyIndex=stale),
            service_op("cas", "cas-n", ID="db", Service="db", Port=1, ModifyIndex=0),
            check_op("cas", Node="cas-n", CheckID="alive", Name="alive", Status="passing", ModifyIndex=stale),
        ],
    ) == [
        (0, 'failed to set node "cas-n", index is stale'),
        (1, 'failed to set service "db" on node "cas-n", index is stale'),
        (2, 'failed to set check "alive" on node "cas-n", index is stale'),
    ]
    results = ok(
        dev_agent,
        [
            node_op("cas", Node="cas-n", Address="192.0.2.3", ModifyIndex=index),
            service_op("cas", "cas-n", ID="db", Service="db", Port=5432, ModifyIndex=index),
            check_op("cas", Node="cas-n", CheckID="alive", Name="alive", Status="passing", ModifyIndex=index),
        ],
    )
    assert results[1]["Service"]["Port"] == 5432
    assert dev_agent.get("/v1/catalog/node/cas-n")["Node"]["Address"] == "192.0.2.3"


def test_catalog_deletes(dev_agent: AgentProcess) -> None:
    results = ok(
        dev_agent,
        [
            node_op("set", Node="del-n", Address="192.0.2.4"),
            service_op("set", "del-n", ID="a", Service="a"),
            service_op("set", "del-n", ID="b", Service="b"),
            check_op("set", Node="del-n", CheckID="a-up", Name="a up", ServiceID="a"),
            check_op("set", Node="del-n", CheckID="node-up", Name="node up"),
            check_op("set", Node="del-n", CheckID="extra", Name="extra"),
        ],
    )
    index = results[0]["Node"]["ModifyIndex"]
    stale = index + 1000
    assert failed(
        dev_agent,
        [
            node_op("delete-cas", Node="del-n", ModifyIndex=stale),
            service_op("delete-cas", "del-n", ID="b", Service="b", ModifyIndex=stale),
            check_op("delete-cas", Node="del-n", CheckID="extra", ModifyIndex=stale),
            check_op("delete-cas", Node="del-n", CheckID="never", ModifyIndex=index),
        ],
    ) == [
        (0, 'failed to delete node "del-n", index is stale'),
        (1, 'failed to delete service "b" on node "del-n", index is stale'),
        (2, 'failed to delete check "extra" on node "del-n", index is stale'),
        (3, 'failed to delete check "never" on node "del-n", index is stale'),
    ]
    # Deleting a service deletes its checks; deletes answer no result.
    assert (
        ok(
            dev_agent,
            [
                service_op("delete", "del-n", ID="a", Service="a"),
                service_op("delete-cas", "del-n", ID="b", Service="b", ModifyIndex=index),
                check_op("delete-cas", Node="del-n", CheckID="extra", ModifyIndex=index),
            ],
        )
        == []
    )
    checks = dev_agent.get("/v1/health/node/del-n")
    assert [c["CheckID"] for c in checks] == ["node-up"]
    assert not dev_agent.get("/v1/catalog/node-services/del-n")["Services"]
    assert ok(dev_agent, [check_op("delete", Node="del-n", CheckID="node-up")]) == []
    assert ok(dev_agent, [node_op("delete-cas", Node="del-n", ModifyIndex=index)]) == []
    assert dev_agent.request("GET", "/v1/catalog/node/del-n")[2] == b"null"


def test_node_delete_takes_everything_on_it(dev_agent: AgentProcess) -> None:
    ok(
        dev_agent,
        [
            node_op("set", Node="gone-n", Address="192.0.2.5"),
            service_op("set", "gone-n", ID="gone-svc", Service="gone-svc"),
            check_op("set", Node="gone-n", CheckID="gone-chk", Name="c", ServiceID="gone-svc"),
        ],
    )
    coord = {"Vec": [0.1] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05}
    dev_agent.put("/v1/coordinate/update", {"Node": "gone-n", "Coord": coord})
    assert dev_agent.get("/v1/coordinate/node/gone-n")[0]["Coord"] == coord
    assert ok(dev_agent, [node_op("delete", Node="gone-n"), node_op("delete", Node="never-was")]) == []
    assert dev_agent.get("/v1/catalog/service/gone-svc") == []
    assert dev_agent.get("/v1/health/node/gone-n") == []
    assert dev_agent.request("GET", "/v1/coordinate/node/gone-n")[0] == 404


def test_catalog_writes_need_their_node_and_service(dev_agent: AgentProcess) -> None:
    assert failed(
        dev_agent,
        [
            service_op("set", "orphan-n", ID="s", Service="s"),
            check_op("set", Node="orphan-n", CheckID="c", Name="c"),
            node_op("set", Node="real-n", Address="192.0.2.6"),
            check_op("set", Node="real-n", CheckID="c", Name="c", ServiceID="no-such-service"),
        ],
    ) == [
        (0, "Missing node registration"),
        (1, "Missing node registration"),
        (3, "Missing service registration"),
    ]
    assert dev_agent.request("GET", "/v1/catalog/node/real-n")[2] == b"null"


def test_node_and_service_prechecks(dev_agent: AgentProcess) -> None:
    assert failed(
        dev_agent,
        [
            node_op("set", Node="", Address="192.0.2.7"),
            node_op("set", Node="bad-id", ID="not-a-uuid", Address="192.0.2.7"),
            node_op("set", Node="bad-id", ID="zzzzzzzz-2d1e-4c8e-9b37-54d3c0c2a001", Address="192.0.2.7"),
            node_op("set", Node="a/b", Address="192.0.2.7"),
            service_op("delete", "n", ID="only-an-id"),
        ],
    ) == [
        (0, "Must provide node"),
        (1, "Bad node ID: uuid string is wrong length"),
        (2, "Bad node ID: uuid is improperly formatted"),
        (3, 'Invalid node name "a/b": "/" is not allowed'),
        (4, "Must provide service name (Service.Service) when service ID is provided"),
    ]


# -- sessions --------------------------------------------------------------------------


def test_session_delete_releases_its_locks_with_lock_delay(dev_agent: AgentProcess) -> None:
    sid = session(dev_agent)
    doomed = session(dev_agent, Behavior="delete", LockDelay="0s")
    ok(
        dev_agent,
        [
            kv("lock", "sd/released", Value=b64("x"), Session=sid),
            kv("lock", "sd/deleted", Value=b64("y"), Session=doomed),
        ],
    )
    # A lock taken and its session deleted in one transaction is released in it too.
    fresh = session(dev_agent)
    assert (
        ok(
            dev_agent,
            [
                kv("lock", "sd/same-txn", Value=b64("z"), Session=fresh),
                {"Session": {"Verb": "delete", "Session": {"ID": sid}}},
                {"Session": {"Verb": "delete", "Session": {"ID": doomed}}},
                {"Session": {"Verb": "delete", "Session": {"ID": fresh}}},
            ],
        )[1:]
        == []
    )
    released = kv_get(dev_agent, "sd/released")
    assert released is not None
    assert "Session" not in released
    assert kv_get(dev_agent, "sd/deleted") is None
    assert "Session" not in kv_get(dev_agent, "sd/same-txn")  # type: ignore[operator]
    assert not dev_agent.get(f"/v1/session/info/{sid}")
    # The released key keeps its session's lock-delay (15s by default), as in Consul.
    other = session(dev_agent)
    assert failed(dev_agent, [kv("lock", "sd/released", Session=other)]) == [
        (0, 'failed to lock key "sd/released" due to lock delay')
    ]
    assert failed(dev_agent, [{"Session": {"Verb": "delete", "Session": {"ID": sid}}}]) == [
        (0, "failed to delete session: failed deleting session: not found")
    ]


def test_sessions_end_with_the_checks_a_transaction_fails(dev_agent: AgentProcess) -> None:
    """Consul ends them inside the transaction; here the leader's reconcile, which every
    catalog change wakes, ends them right after it."""
    ok(
        dev_agent,
        [
            node_op("set", Node="sess-n", Address="192.0.2.50"),
            check_op("set", Node="sess-n", CheckID="alive", Name="alive", Status="passing"),
        ],
    )
    sid = dev_agent.put("/v1/session/create", {"Node": "sess-n", "NodeChecks": ["alive"]})["ID"]
    ok(dev_agent, [kv("lock", "sess/k", Value=b64("x"), Session=sid)])
    ok(dev_agent, [check_op("set", Node="sess-n", CheckID="alive", Name="alive", Status="critical")])
    wait_for(lambda: not dev_agent.get(f"/v1/session/info/{sid}"))
    wait_for(lambda: "Session" not in (kv_get(dev_agent, "sess/k") or {"Session": sid}))


# -- atomicity -------------------------------------------------------------------------


def test_one_failure_rolls_back_every_kind(dev_agent: AgentProcess) -> None:
    sid = session(dev_agent)
    ok(dev_agent, [kv("set", "rb/existing", Value=b64("keep")), kv("set", "rb/guard", Value=b64("g"))])
    errors = failed(
        dev_agent,
        [
            kv("set", "rb/new", Value=b64("x")),
            kv("delete", "rb/existing"),
            kv("lock", "rb/locked", Session=sid),
            node_op("set", Node="rb-node", Address="192.0.2.8"),
            service_op("set", "rb-node", ID="rb-svc", Service="rb-svc"),
            check_op("set", Node="rb-node", CheckID="rb-chk", Name="rb"),
            {"Session": {"Verb": "delete", "Session": {"ID": sid}}},
            kv("check-not-exists", "rb/guard"),
        ],
    )
    assert errors == [(7, 'key "rb/guard" exists')]
    assert kv_get(dev_agent, "rb/new") is None
    assert kv_get(dev_agent, "rb/locked") is None
    assert kv_get(dev_agent, "rb/existing")["Value"] == b64("keep")  # type: ignore[index]
    assert dev_agent.request("GET", "/v1/catalog/node/rb-node")[2] == b"null"
    assert dev_agent.get("/v1/catalog/service/rb-svc") == []
    assert dev_agent.get(f"/v1/session/info/{sid}")[0]["ID"] == sid


def test_concurrent_cas_creates_have_one_winner(dev_agent: AgentProcess) -> None:
    statuses: list[int] = []

    def create(n: int) -> None:
        status, _, _ = txn(
            dev_agent, [kv("cas", "race/k", Value=b64(str(n)), Index=0), kv("set", f"race/by-{n}")]
        )
        statuses.append(status)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [200] + [409] * 7
    _, _, body = dev_agent.request("GET", "/v1/kv/race/?keys")
    assert len(json.loads(body)) == 2


# -- limits and malformed input ----------------------------------------------------------


def test_operation_limit(dev_agent: AgentProcess) -> None:
    status, _, body = txn(dev_agent, [kv("set", f"lim/{n}") for n in range(129)])
    assert (status, body) == (413, "Transaction contains too many operations (129 > 128)")
    assert kv_get(dev_agent, "lim/0") is None
    assert len(ok(dev_agent, [kv("set", f"lim/{n}") for n in range(128)])) == 128


def test_body_size_limit(dev_agent: AgentProcess) -> None:
    raw = json.dumps([kv("set", "big/k", Value=base64.b64encode(b"x" * (512 * 1024)).decode())]).encode()
    status, _, body = dev_agent.request("PUT", "/v1/txn", raw)
    assert status == 413
    assert body.startswith(f"Request body({len(raw)} bytes) too large, max size: 524288 bytes. See ".encode())
    assert kv_get(dev_agent, "big/k") is None


def test_value_size_limit(tmp_path: Path) -> None:
    """Past a raised request limit, each value is still held to kv_max_value_size."""
    limits = "limits { txn_max_req_len = 2097152 kv_max_value_size = 1024 }"
    with AgentProcess(["-dev", "-hcl", limits], log_path=tmp_path / "agent.log") as agent:
        status, _, body = txn(agent, [kv("set", "small/k", Value=b64("x" * 1024))])
        assert status == 200, body
        status, _, body = txn(agent, [kv("set", "small/k", Value=b64("x" * 1025))])
        assert (status, body) == (413, 'Value for key "small/k" is too large (1025 > 1024 bytes)')


MALFORMED = [
    ({"KV": {"Verb": "set", "Key": "m/k", "Value": "***"}}, "KV: Value: illegal base64 data"),
    ({"KV": {"Verb": "set", "Key": "m/k", "Value": 5}}, "KV: Value: expected a base64 string"),
    ({"KV": {"Verb": "set", "Key": 5}}, "KV: Key: Expected `str`, got `int`"),
    ({"KV": {"Verb": "set", "Key": "m/k", "Flags": -1}}, "KV: Flags: Expected `int` >= 0"),
    ({"KV": {"Verb": "set", "Key": "m/k", "Index": "soon"}}, "KV: Index"),
    ({"KV": {"Verb": "set", "Key": "m/k", "Bogus": 1}}, 'KV: unknown field "Bogus"'),
    ({"KV": "set m/k"}, "KV must be a JSON object"),
    ({"Bogus": {}}, 'unknown field "Bogus"'),
    ({}, "exactly one of KV, Node, Service, Check or Session must be given"),
    ({"KV": {"Verb": "get", "Key": "a"}, "Node": {"Verb": "get"}}, "exactly one of"),
    ("KV", "operation must be a JSON object"),
    ({"Node": {"Verb": "set", "Node": {"Node": "n", "Address": 5}}}, "Invalid node: Address"),
    ({"Node": {"Verb": "set", "Node": {"Node": "n", "Meta": {"a": 1}}}}, "Invalid node: Meta"),
    ({"Node": {"Verb": "set", "Node": "n"}}, "Node: Node must be a JSON object"),
    ({"Service": {"Verb": "set", "Node": 5, "Service": {"Service": "s"}}}, "Service: Node"),
    ({"Service": {"Verb": "set", "Node": "n", "Service": {"Service": "s", "Port": "http"}}}, "Port"),
    (
        {"Service": {"Verb": "set", "Node": "n", "Service": {"Service": "s", "Port": 70000}}},
        "not a valid port",
    ),
    ({"Service": {"Verb": "set", "Node": "n", "Service": {"Service": "s", "Tags": "a"}}}, "Tags"),
    (
        {"Service": {"Verb": "set", "Node": "n", "Service": {"Service": "s", "ModifyIndex": -3}}},
        "ModifyIndex",
    ),
    (
        {"Check": {"Verb": "set", "Check": {"Node": "n", "CheckID": "c", "Status": "fine"}}},
        "Invalid check status",
    ),
    ({"Check": {"Verb": "set", "Check": {"Node": "n"}}}, "Missing check ID"),
    ({"Check": {"Verb": 3, "Check": {"Node": "n", "CheckID": "c"}}}, "Check: Verb"),
    ({"Session": {"Verb": "delete", "Session": {"ID": 7}}}, "Session: ID"),
]


@pytest.mark.parametrize(("op", "message"), MALFORMED)
def test_malformed_operation_is_refused_whole(dev_agent: AgentProcess, op: Any, message: str) -> None:
    status, _, body = txn(dev_agent, [kv("set", "malformed/first", Value=b64("x")), op])
    assert status == 400, body
    assert body.startswith("Failed to parse body: operation 1: "), body
    assert message in body
    assert kv_get(dev_agent, "malformed/first") is None


@pytest.mark.parametrize("raw", [b'{"KV": {}}', b"[1, 2", b"", b'"ops"'])
def test_malformed_body(dev_agent: AgentProcess, raw: bytes) -> None:
    status, _, body = dev_agent.request("PUT", "/v1/txn", raw)
    assert status == 400, body


def test_read_only_transactions_answer_as_reads(dev_agent: AgentProcess) -> None:
    ok(dev_agent, [kv("set", "ro/k", Value=b64("v"))])
    for query in ("", "?stale", "?consistent"):
        status, headers, body = txn(dev_agent, [kv("get", "ro/k"), kv("check-not-exists", "ro/none")], query)
        assert status == 200
        assert body["Results"][0]["KV"]["Value"] == b64("v")
        assert headers["X-Consul-Knownleader"] == "true"
        assert headers["X-Consul-Lastcontact"] == "0"
    status, headers, body = txn(dev_agent, [kv("get", "ro/none")])
    assert status == 409
    assert "X-Consul-Knownleader" in headers
    status, _, body = txn(dev_agent, [kv("get", "ro/k")], "?stale&consistent")
    assert status == 400


# -- a real Consul client ----------------------------------------------------------------


def test_py_consul_txn(dev_agent: AgentProcess) -> None:
    c = consul.Consul(host="127.0.0.1", port=dev_agent.http_port)
    result = c.txn.put(
        [
            node_op("set", Node="pyc-node", Address="192.0.2.10"),
            service_op("set", "pyc-node", ID="pyc-1", Service="pyc", Port=9000),
            kv("set", "pyc/k", Value=b64("v")),
        ]
    )
    assert [next(iter(r)) for r in result["Results"]] == ["Node", "Service", "KV"]
    _, nodes = c.catalog.service("pyc")
    assert [(n["Node"], n["ServicePort"]) for n in nodes] == [("pyc-node", 9000)]
    with pytest.raises(consul.ConsulException, match="409"):
        c.txn.put([service_op("get", "pyc-node", ID="absent")])


# -- on etcd ---------------------------------------------------------------------------


@pytest.mark.etcd
@pytest.mark.skipif(not etcd_available(), reason="etcd is not installed")
def test_on_etcd(tmp_path: Path) -> None:
    """etcd refuses two ops on one key and more than 128 ops or compares in a transaction;
    the plan stays inside both, and its compares make a lost race a clean 409."""
    (tmp_path / "etcd").mkdir()
    args = ["-server", "-node", "etcd-node", "-bind", "127.0.0.1", "-data-dir", str(tmp_path / "data")]
    with (
        etcd_cluster(tmp_path / "etcd") as etcd,
        AgentProcess([*args, "-store", etcd.url], log_path=tmp_path / "agent.log") as agent,
    ):
        # A session needs its node in the catalog, which the agent's first sync puts there.
        wait_for(lambda: agent.get("/v1/catalog/node/etcd-node"))
        sid = agent.put("/v1/session/create", {"Node": "etcd-node"})["ID"]
        ok(agent, [kv("set", f"tree/{n}", Value=b64("old")) for n in range(5)])
        results = ok(
            agent,
            [
                kv("delete-tree", "tree/"),
                kv("set", "tree/1", Value=b64("new")),
                kv("set", "tree/1", Value=b64("newer")),
                kv("lock", "tree/lock", Value=b64("l"), Session=sid),
                node_op("set", Node="etcd-ext", Address="192.0.2.30"),
                service_op("set", "etcd-ext", ID="e", Service="e"),
                {"Session": {"Verb": "delete", "Session": {"ID": sid}}},
            ],
        )
        assert len(results) == 5
        status, _, body = agent.request("GET", "/v1/kv/tree/?recurse")
        assert status == 200
        assert [(e["Key"], e.get("Session")) for e in json.loads(body)] == [
            ("tree/1", None),
            ("tree/lock", None),
        ]
        assert len(ok(agent, [kv("set", f"many/{n}") for n in range(128)])) == 128
        assert failed(agent, [kv("set", "many/x"), kv("check-not-exists", "many/0")]) == [
            (1, 'key "many/0" exists')
        ]
        assert kv_get(agent, "many/x") is None


def test_through_a_client_agent(tmp_path: Path) -> None:
    """A client agent's store is its server's internal API, which checks every key and
    value it is sent; a transaction's plan passes those checks whole, or fails whole."""
    server_args = [
        *("-server", "-bootstrap-expect", "1", "-data-dir", str(tmp_path / "s")),
        *("-bind", "127.0.0.1", "-node", "hub"),
    ]
    with AgentProcess(server_args, log_path=tmp_path / "s.log") as server:
        client_args = [
            *("-data-dir", str(tmp_path / "c"), "-bind", "127.0.0.1"),
            *("-node", "edge", "-retry-join", server.server_address),
        ]
        with AgentProcess(client_args, log_path=tmp_path / "c.log") as client:
            results = ok(
                client,
                [
                    kv("set", "edge/k", Value=b64("v")),
                    kv("set", "edge/k", Value=b64("w")),
                    node_op("set", Node="edge-ext", Address="192.0.2.40"),
                    service_op("set", "edge-ext", ID="x", Service="x"),
                    check_op("set", Node="edge-ext", CheckID="x-up", Name="x up", ServiceID="x"),
                ],
            )
            assert len(results) == 5
            assert kv_get(server, "edge/k")["Value"] == b64("w")  # type: ignore[index]
            assert [c["CheckID"] for c in server.get("/v1/health/node/edge-ext")] == ["x-up"]
            assert failed(client, [kv("delete", "edge/k"), node_op("get", Node="nobody")]) == [
                (1, 'node "nobody" doesn\'t exist')
            ]
            assert kv_get(server, "edge/k") is not None


VERBS = ["set", "cas", "lock", "unlock", "get", "get-or-empty", "get-tree", "check-index", "check-session",
         "check-not-exists", "delete", "delete-tree", "delete-cas", "explode"]  # fmt: skip
NAMES = st.sampled_from(["gen/a", "gen/", "gen/b/c", "gen-node", "fuzz-node", "", "svc"])
INTS = st.one_of(st.integers(0, 50), st.integers(0, 50), st.integers(-(2**64), 2**64))
SCALAR = st.one_of(
    st.none(), st.booleans(), INTS, st.text(max_size=8), NAMES, st.sampled_from(["eA==", "***"])
)
JUNK = st.recursive(
    SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(NAMES, inner, max_size=3))
)


def _shaped(fixed: dict[str, Any], **optional: Any) -> Any:
    """Mostly well-formed members, so that generated transactions get past decoding."""
    return st.fixed_dictionaries(fixed, optional={k: st.one_of(*[v] * 5, JUNK) for k, v in optional.items()})


VERB = st.one_of(st.sampled_from(VERBS), SCALAR)
SHAPED = [
    st.fixed_dictionaries(
        {
            "KV": _shaped(
                {"Verb": VERB, "Key": NAMES}, Value=st.just("eA=="), Flags=INTS, Index=INTS, Session=NAMES
            )
        }
    ),
    st.fixed_dictionaries(
        {"Node": _shaped({"Verb": VERB, "Node": _shaped({"Node": NAMES}, Address=NAMES, ModifyIndex=INTS)})}
    ),
    st.fixed_dictionaries(
        {
            "Service": _shaped(
                {"Verb": VERB, "Node": NAMES, "Service": _shaped({"ID": NAMES}, Service=NAMES, Port=INTS)}
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "Check": _shaped(
                {"Verb": VERB, "Check": _shaped({"Node": NAMES, "CheckID": NAMES}, ServiceID=NAMES)}
            )
        }
    ),
    st.fixed_dictionaries({"Session": _shaped({"Verb": VERB, "Session": _shaped({"ID": NAMES})})}),
]
OPERATION = st.one_of(
    st.dictionaries(
        st.sampled_from(["KV", "Node", "Service", "Check", "Session", "Bogus"]), JUNK, max_size=2
    ),
    *SHAPED * 3,
)


@pytest.fixture(scope="module")
def fuzz_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """Its own agent: generated deletes (a delete-tree of every key, its own node) must not
    reach the records other tests read."""
    log = tmp_path_factory.mktemp("fuzz") / "agent.log"
    with AgentProcess(["-dev", "-node", "fuzz-node"], log_path=log) as agent:
        yield agent


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(OPERATION, max_size=4))
def test_generated_operations_never_fail_the_server(fuzz_agent: AgentProcess, ops: list[Any]) -> None:
    status, _, body = txn(fuzz_agent, ops)
    assert status in (200, 400, 409, 413), body


def test_node_ids_rename_and_reserve_names(dev_agent: AgentProcess) -> None:
    """Consul's rules for a node set that names an ID: the node holding that ID is renamed
    (the old name goes with everything on it), and a name a healthy node holds under
    another ID is refused."""
    moved, holder, taker = (f"6a0b5d2e-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))
    ok(
        dev_agent,
        [
            node_op("set", ID=moved, Node="old-name", Address="192.0.2.70"),
            service_op("set", "old-name", ID="svc", Service="svc"),
            node_op("set", ID=holder, Node="taken", Address="192.0.2.71"),
            check_op("set", Node="taken", CheckID="serfHealth", Name="Serf Health Status", Status="passing"),
        ],
    )
    results = ok(dev_agent, [node_op("set", ID=moved, Node="new-name", Address="192.0.2.72")])
    assert (results[0]["Node"]["Node"], results[0]["Node"]["ID"]) == ("new-name", moved)
    assert dev_agent.request("GET", "/v1/catalog/node/old-name")[2] == b"null"
    assert dev_agent.get("/v1/catalog/service/svc") == []
    assert failed(dev_agent, [node_op("set", ID=taker, Node="taken", Address="192.0.2.73")]) == [
        (0, f'Error while renaming Node ID: "{taker}": Node name taken is reserved by node {holder} '
            "with name taken (192.0.2.71)")
    ]  # fmt: skip
    assert failed(dev_agent, [node_op("set", ID=moved, Node="taken", Address="192.0.2.74")]) == [
        (0, f'Error while renaming Node ID: "{moved}" (192.0.2.74): Node name taken is reserved by node '
            f"{holder} with name taken (192.0.2.71)")
    ]  # fmt: skip
    # A failed holder gives its name up.
    ok(dev_agent, [check_op("set", Node="taken", CheckID="serfHealth", Name="Serf Health Status")])
    assert (
        ok(dev_agent, [node_op("set", ID=taker, Node="taken", Address="192.0.2.73")])[0]["Node"]["ID"]
        == taker
    )
