"""An unmodified Consul client library (py-consul) drives the agent end to end."""

from __future__ import annotations

import threading
import time

import consul
import pytest

from waypost.testing import AgentProcess


@pytest.fixture
def c(dev_agent: AgentProcess) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=dev_agent.http_port)


def test_agent_self_and_datacenters(c: consul.Consul) -> None:
    me = c.agent.self()
    assert set(me) == {"Config", "DebugConfig", "Coord", "Member", "Meta", "Stats", "xDS"}
    assert me["Config"]["Datacenter"] == "dc1"
    assert c.catalog.datacenters() == ["dc1"]
    assert c.status.leader()


def test_service_with_ttl_check(c: consul.Consul) -> None:
    c.agent.service.register("api", service_id="api-1", port=9000, tags=["v1"], check=consul.Check.ttl("10s"))
    _, nodes = c.health.service("api")
    assert [n["Service"]["ID"] for n in nodes] == ["api-1"]
    assert {ch["CheckID"] for ch in nodes[0]["Checks"]} == {"serfHealth", "service:api-1"}
    _, passing = c.health.service("api", passing=True)
    assert passing == []
    c.agent.check.ttl_pass("service:api-1", "all good")
    _, passing = c.health.service("api", passing=True)
    assert [n["Service"]["Port"] for n in passing] == [9000]
    check = c.agent.checks()["service:api-1"]
    assert (check["Status"], check["Output"]) == ("passing", "all good")
    c.agent.check.ttl_warn("service:api-1")
    assert c.agent.checks()["service:api-1"]["Status"] == "warning"
    _, catalog = c.catalog.service("api", tag="v1")
    assert catalog[0]["ServiceID"] == "api-1"
    assert "api" in c.catalog.services()[1]
    c.agent.service.deregister("api-1")
    assert c.health.service("api")[1] == []


def test_multiple_checks_get_numbered_ids(c: consul.Consul) -> None:
    c.agent.service.register(
        "multi", service_id="multi-1", check=consul.Check.ttl("10s"), extra_checks=[consul.Check.ttl("20s")]
    )
    assert {"service:multi-1:1", "service:multi-1:2"} <= set(c.agent.checks())
    c.agent.service.deregister("multi-1")
    assert not {"service:multi-1:1", "service:multi-1:2"} & set(c.agent.checks())


def test_ttl_check_expires(c: consul.Consul) -> None:
    c.agent.check.register("short", consul.Check.ttl("1s"), check_id="short")
    c.agent.check.ttl_pass("short")
    assert c.agent.checks()["short"]["Status"] == "passing"
    deadline = time.monotonic() + 5
    while c.agent.checks()["short"]["Status"] != "critical" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert c.agent.checks()["short"]["Status"] == "critical"
    assert "TTL expired" in c.agent.checks()["short"]["Output"]
    c.agent.check.deregister("short")


def test_kv_cas_flags_and_recurse(c: consul.Consul) -> None:
    assert c.kv.put("app/a", "1", flags=7)
    _, item = c.kv.get("app/a")
    assert (item["Value"], item["Flags"]) == (b"1", 7)
    assert not c.kv.put("app/a", "2", cas=item["ModifyIndex"] + 100)
    assert c.kv.put("app/a", "2", cas=item["ModifyIndex"])
    assert not c.kv.put("app/new", "x", cas=1)
    assert c.kv.put("app/new", "x", cas=0)
    c.kv.put("app/empty", None)
    _, empty = c.kv.get("app/empty")
    assert empty["Value"] is None
    _, items = c.kv.get("app/", recurse=True)
    assert [i["Key"] for i in items] == ["app/a", "app/empty", "app/new"]
    _, keys = c.kv.get("", keys=True, separator="/")
    assert "app/" in keys
    assert c.kv.delete("app/", recurse=True)
    assert c.kv.get("app/a")[1] is None


def test_sessions_and_locks(c: consul.Consul) -> None:
    s1 = c.session.create(name="one", ttl=30)
    s2 = c.session.create(name="two", lock_delay=0)
    assert c.kv.put("locks/x", "held", acquire=s1)
    assert not c.kv.put("locks/x", "stolen", acquire=s2)
    _, item = c.kv.get("locks/x")
    assert (item["Session"], item["LockIndex"]) == (s1, 1)
    assert c.kv.put("locks/x", "released", release=s1)
    _, item = c.kv.get("locks/x")
    assert "Session" not in item
    assert c.kv.put("locks/x", "mine", acquire=s2)
    c.session.destroy(s2)
    _, item = c.kv.get("locks/x")
    assert "Session" not in item
    _, info = c.session.info(s1)
    assert info["Name"] == "one"
    assert c.session.renew(s1)["ID"] == s1
    assert {s["ID"] for s in c.session.list()[1]} >= {s1}
    c.session.destroy(s1)


def test_session_delete_behavior(c: consul.Consul) -> None:
    sid = c.session.create(behavior="delete", lock_delay=0)
    assert c.kv.put("eph/key", "v", acquire=sid)
    c.session.destroy(sid)
    assert c.kv.get("eph/key")[1] is None


def test_txn(c: consul.Consul) -> None:
    import base64

    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    result = c.txn.put(
        [
            {"KV": {"Verb": "set", "Key": "txn/a", "Value": b64("1")}},
            {"KV": {"Verb": "set", "Key": "txn/b", "Value": b64("2")}},
            {"KV": {"Verb": "get", "Key": "txn/a"}},
        ]
    )
    assert [r["KV"]["Key"] for r in result["Results"]] == ["txn/a", "txn/b", "txn/a"]
    with pytest.raises(consul.ConsulException):
        c.txn.put(
            [{"KV": {"Verb": "check-not-exists", "Key": "txn/a"}}, {"KV": {"Verb": "delete", "Key": "txn/b"}}]
        )
    assert c.kv.get("txn/b")[1]["Value"] == b"2"


def test_events(c: consul.Consul) -> None:
    assert c.event.fire("deploy", "v2")["Name"] == "deploy"
    _, events = c.event.list(name="deploy")
    assert events[-1]["Payload"] == b"v2"


def test_blocking_query_wakes_on_change(c: consul.Consul) -> None:
    c.kv.put("block/key", "0")
    index, _ = c.kv.get("block/key")
    woke: dict[str, float] = {}

    def watch() -> None:
        new_index, _ = c.kv.get("block/key", index=index, wait="20s")
        woke["at"] = time.monotonic()
        woke["index"] = new_index

    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.3)
    c.kv.put("unrelated", "x")
    time.sleep(0.3)
    assert "at" not in woke
    written = time.monotonic()
    c.kv.put("block/key", "1")
    t.join(10)
    assert woke["index"] > index
    assert woke["at"] - written < 1.0


def test_catalog_register_and_nodes(c: consul.Consul) -> None:
    assert c.catalog.register("ext-node", "10.1.2.3", service={"Service": "ext", "Port": 5432})
    _, nodes = c.catalog.nodes()
    assert "ext-node" in {n["Node"] for n in nodes}
    _, node = c.catalog.node("ext-node")
    assert "ext" in node["Services"]
    assert c.catalog.deregister("ext-node")
    assert c.catalog.node("ext-node")[1] is None


def test_prepared_queries(c: consul.Consul) -> None:
    """py-consul sends every definition as a name_prefix_match template, so it executes by name."""
    c.agent.service.register("pq-web", address="127.0.0.31", port=8080, tags=["blue"])
    created = c.query.create("pq-web", name="pq-web-q", tags=["blue"], ttl="10s", nearestn=1)
    [stored] = c.query.get(created["ID"])
    assert (stored["Name"], stored["Template"]["Type"], stored["DNS"]["TTL"]) == (
        "pq-web-q", "name_prefix_match", "10s",
    )  # fmt: skip
    assert created["ID"] in {q["ID"] for q in c.query.list()}
    answer = c.query.execute("pq-web-q", near="_agent", limit=1)
    assert (answer["Service"], answer["Datacenter"], answer["Failovers"]) == ("pq-web", "dc1", 0)
    assert [n["Service"]["Address"] for n in answer["Nodes"]] == ["127.0.0.31"]
    assert c.query.explain("pq-web-q")["Query"]["Service"]["Tags"] == ["blue"]
    assert c.query.update(created["ID"], "pq-web", name="pq-web-q", tags=["green"])
    assert c.query.execute("pq-web-q")["Nodes"] == []
    assert c.query.delete(created["ID"])
    assert created["ID"] not in {q["ID"] for q in c.query.list()}
