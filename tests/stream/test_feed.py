"""The delta stream's sans-I/O core (``feed`` and ``subscriber`` together): topics fed store
events through real ``Indexes``, and readers' framed output parsed back as server-sent events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from waypost.state import schema
from waypost.state.indexes import Indexes
from waypost.state.model import HealthCheck, KVEntry, Node, NodeService
from waypost.store.base import Event, EventType, KeyValue
from waypost.stream import feed
from waypost.stream.feed import Change, Hub
from waypost.stream.subscriber import Subscriber

Sse = tuple[str, int | None, Any]


def parse(raw: bytes) -> list[Sse]:
    """Events as (event, id, data); comments as ("comment", None, text)."""
    out: list[Sse] = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        if block.startswith(":"):
            out.append(("comment", None, block[1:].strip()))
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        index = int(fields["id"]) if "id" in fields else None
        out.append((fields["event"], index, json.loads(fields["data"])))
    return out


class World:
    """Indexes and a hub fed one revision at a time, as the state's listener feeds them."""

    def __init__(self) -> None:
        self.idx = Indexes()
        self.hub = Hub()
        self.revision = 1

    def apply(self, *events: tuple[str, bytes | None]) -> int:
        self.revision += 1
        rev = self.revision
        batch = [
            Event(EventType.PUT, KeyValue(k, v, rev, rev, 1))
            if v is not None
            else Event(EventType.DELETE, KeyValue(k, b"", 0, rev, 0))
            for k, v in events
        ]
        self.idx.apply(batch, rev)
        self.hub.apply(self.idx, batch, rev)
        return rev

    def node(self, name: str) -> tuple[str, bytes]:
        return schema.NODES.key(name), schema.encode(Node(Node=name, Address="10.0.0.1"))

    def service(self, node: str, sid: str, name: str, tags: list[str] | None = None) -> tuple[str, bytes]:
        svc = NodeService(ID=sid, Service=name, Port=80, Tags=tags or [])
        return schema.SERVICES.key(node, sid), schema.encode(svc)

    def check(self, node: str, sid: str, status: str) -> tuple[str, bytes]:
        check = HealthCheck(Node=node, CheckID=f"service:{sid}", Name="ttl", Status=status, ServiceID=sid,
                            ServiceName=sid.split("-")[0])  # fmt: skip
        return schema.CHECKS.key(node, f"service:{sid}"), schema.encode(check)

    def kv(self, key: str, value: bytes) -> tuple[str, bytes]:
        return schema.KVS.key(key), schema.encode(KVEntry(Key=key, Value=value))

    def reader(self, kind: str, name: str, resume: int | None = None, **kw: Any) -> Subscriber:
        sub = Subscriber(self.hub.topic(kind, name, self.idx), **kw)
        sub.start(self.idx, resume)
        return sub


def drain(sub: Subscriber) -> list[Sse]:
    out = b""
    for _ in range(1000):
        chunk = sub.take(budget=1024)
        if not chunk:
            break
        out += chunk
    return parse(out)


def ids(events: list[Sse]) -> list[tuple[str, str]]:
    """(op, instance) of health events."""
    return [(e, d["Service"]["ID"]) for e, _, d in events if e in ("upsert", "delete")]


@pytest.fixture
def world() -> World:
    w = World()
    w.apply(w.node("n1"), w.node("n2"))
    w.apply(w.service("n2", "web-2", "web"), w.service("n1", "web-1", "web"), w.service("n1", "db-1", "db"))
    return w


def test_a_reader_gets_the_snapshot_in_list_order_then_end_of_snapshot(world: World) -> None:
    events = drain(world.reader("health", "web"))
    assert ids(events) == [("upsert", "web-1"), ("upsert", "web-2")]
    assert all(i is None for _, i, _ in events[:-1])
    assert events[-1] == ("end-of-snapshot", world.revision, {"Index": world.revision})
    assert events[0][2]["Node"]["Node"] == "n1"
    assert events[0][2]["Checks"] == []


def test_changes_follow_with_the_revision_as_id_and_only_for_their_service(world: World) -> None:
    sub = world.reader("health", "web")
    drain(sub)
    passing = world.apply(world.check("n1", "web-1", "passing"))
    world.apply(world.service("n1", "db-1", "db", ["v2"]))
    gone = world.apply((schema.SERVICES.key("n2", "web-2"), None))
    events = drain(sub)
    assert [(e, i) for e, i, _ in events] == [("upsert", passing), ("delete", gone)]
    assert events[0][2]["Checks"][0]["Status"] == "passing"
    assert events[1][2]["Service"]["ID"] == "web-2", "a delete carries the row last shown"


def test_one_revision_touching_several_instances_has_its_id_on_the_last_event(world: World) -> None:
    sub = world.reader("health", "web")
    drain(sub)
    rev = world.apply(world.node("n1"), world.check("n2", "web-2", "warning"))
    assert [(e, i) for e, i, _ in drain(sub)] == [("upsert", None), ("upsert", rev)]


def test_a_change_to_a_node_without_the_service_sends_nothing(world: World) -> None:
    sub = world.reader("health", "web")
    drain(sub)
    world.apply(world.node("n3"), world.service("n3", "db-3", "db"))
    world.apply(world.check("n3", "db-3", "passing"))
    assert drain(sub) == []


def test_a_resuming_reader_gets_exactly_the_changes_after_its_index(world: World) -> None:
    first = world.reader("health", "web")
    seen = drain(first)[-1][1]
    first.close()
    a = world.apply(world.check("n1", "web-1", "passing"))
    b = world.apply(world.service("n3", "web-3", "web"), world.node("n3"))
    c = world.apply((schema.SERVICES.key("n1", "web-1"), None))
    events = drain(world.reader("health", "web", resume=seen))
    assert [(e, i) for e, i, _ in events] == [("upsert", a), ("upsert", b), ("delete", c)]
    assert drain(world.reader("health", "web", resume=a)) == events[1:]
    assert drain(world.reader("health", "web", resume=c)) == []


def test_a_resume_from_before_what_the_ring_keeps_gets_a_new_snapshot(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "RING", 2)
    before = world.revision
    world.reader("health", "web").close()
    for status in ("passing", "warning", "critical"):
        world.apply(world.check("n1", "web-1", status))
    events = drain(world.reader("health", "web", resume=before))
    assert events[0] == ("new-snapshot", None, {"Index": world.revision})
    assert ids(events[1:-1]) == [("upsert", "web-1"), ("upsert", "web-2")]
    assert events[-1][:2] == ("end-of-snapshot", world.revision)
    assert len(drain(world.reader("health", "web", resume=world.revision - 1))) == 1


def test_the_ring_is_bounded_in_bytes_too(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "RING_BYTES", 3000)
    world.apply(world.kv("big/a", b"x" * 1000))
    world.reader("kv", "big/").close()
    first = world.revision
    for i in range(5):
        world.apply(world.kv(f"big/{i}", b"y" * 1000))
    topic = world.hub.topic("kv", "big/", world.idx)
    assert sum(len(c.data) for c in topic.ring) <= 3000
    assert drain(world.reader("kv", "big/", resume=first))[0][0] == "new-snapshot"
    assert [e for e, _, _ in drain(world.reader("kv", "big/", resume=world.revision - 1))] == ["upsert"]


def test_a_resume_from_before_the_topic_was_followed_or_from_the_future_gets_a_new_snapshot(
    world: World,
) -> None:
    assert drain(world.reader("health", "web", resume=1))[0][0] == "new-snapshot"
    assert drain(world.reader("health", "web", resume=world.revision + 5))[0][0] == "new-snapshot"


def test_a_reader_that_falls_too_far_behind_is_cut_off_and_holds_nothing(world: World) -> None:
    woken: list[bool] = []
    sub = world.reader("health", "web", limit=4000)
    sub.wake = lambda: woken.append(sub.cut)
    drain(sub)
    for i in range(10):
        world.apply(world.check("n1", "web-1", "passing" if i % 2 else "critical"))
        if sub.cut:
            break
    assert sub.cut
    assert sub.closed
    assert woken[-1] is True
    assert sub.take() == b""
    assert sub not in world.hub.topic("health", "web", world.idx).listeners


def test_the_acl_test_hides_rows_and_their_changes(world: World) -> None:
    sub = world.reader("health", "web", acl=lambda c: c.key[0] == "n1")
    assert ids(drain(sub)) == [("upsert", "web-1")]
    world.apply(world.check("n2", "web-2", "passing"))
    world.apply((schema.SERVICES.key("n2", "web-2"), None))
    assert drain(sub) == []
    world.apply((schema.SERVICES.key("n1", "web-1"), None))
    assert ids(drain(sub)) == [("delete", "web-1")]


def test_a_filtered_reader_is_told_when_a_row_stops_matching(world: World) -> None:
    def passing(change: Change) -> bool:
        return all(c.Status == "passing" for c in change.row["Checks"])

    world.apply(world.check("n2", "web-2", "critical"))
    sub = world.reader("health", "web", match=passing)
    assert ids(drain(sub)) == [("upsert", "web-1")]
    world.apply(world.check("n1", "web-1", "critical"))
    world.apply(world.check("n2", "web-2", "warning"))
    world.apply(world.check("n2", "web-2", "passing"))
    assert ids(drain(sub)) == [("delete", "web-1"), ("upsert", "web-2")]


def test_catalog_services_follow_each_name_with_the_union_of_its_tags(world: World) -> None:
    sub = world.reader("catalog", "")
    assert [(e, d) for e, _, d in drain(sub)[:-1]] == [("upsert", {"db": []}), ("upsert", {"web": []})]
    world.apply(world.service("n1", "web-1", "web", ["a"]))
    world.apply(world.check("n1", "web-1", "passing"))
    world.apply(world.service("n2", "web-2", "web", ["b"]))
    world.apply((schema.SERVICES.key("n1", "db-1"), None))
    world.apply(world.service("n2", "web-2", "api", ["b"]))
    events = [(e, d) for e, _, d in drain(sub)]
    assert events == [
        ("upsert", {"web": ["a"]}),
        ("upsert", {"web": ["a", "b"]}),
        ("delete", {"db": []}),
        ("upsert", {"api": ["b"]}),
        ("upsert", {"web": ["a"]}),
    ], "names changed in one revision come in name order"


def test_kv_prefix_streams_its_keys_only(world: World) -> None:
    world.apply(world.kv("app/a", b"1"), world.kv("other", b"x"))
    sub = world.reader("kv", "app/")
    events = drain(sub)
    assert [(e, d["Key"], d["Value"]) for e, _, d in events[:-1]] == [("upsert", "app/a", "MQ==")]
    world.apply(world.kv("app/b", b"2"), world.kv("apps", b"no"))
    gone = world.apply((schema.KVS.key("app/a"), None))
    events = drain(sub)
    assert [(e, i, d["Key"]) for e, i, d in events] == [
        ("upsert", gone - 1, "app/b"),
        ("delete", gone, "app/a"),
    ]
    assert events[1][2] == {"Key": "app/a"}


def test_a_re_listed_state_sends_every_reader_a_new_snapshot(world: World) -> None:
    sub = world.reader("health", "web")
    drain(sub)
    world.apply((schema.SERVICES.key("n2", "web-2"), None))
    world.hub.rebuild(world.idx)
    events = drain(sub)
    assert events[0][0] == "new-snapshot"
    assert ids(events[1:-1]) == [("upsert", "web-1")]


def test_an_acl_change_resends_the_topic_and_a_deleted_token_ends_the_stream(world: World) -> None:
    token_alive = [True]
    sub = world.reader("health", "web")
    sub.recheck = lambda: token_alive[0]
    drain(sub)
    world.apply((schema.ACL_POLICIES.key("p1"), None))
    assert drain(sub)[0][0] == "new-snapshot"
    token_alive[0] = False
    world.apply((schema.ACL_TOKENS.key("t1"), None))
    assert sub.closed
    assert drain(sub) == []


def test_a_ping_is_sent_only_on_an_idle_stream(world: World) -> None:
    sub = world.reader("health", "web")
    sub.ping()
    assert drain(sub)[-1][0] == "end-of-snapshot"
    sub.ping()
    assert drain(sub) == [("comment", None, "ping")]


def test_a_snapshot_is_framed_in_bounded_chunks(world: World) -> None:
    world.apply(*(world.service("n1", f"web-{i}", "web") for i in range(3, 200)))
    sub = world.reader("health", "web")
    first = sub.take(budget=4096)
    assert 4096 <= len(first) < 4096 + 2000
    assert len(ids(parse(first + drain_raw(sub)))) == 199


def drain_raw(sub: Subscriber) -> bytes:
    out = b""
    for _ in range(1000):
        chunk = sub.take()
        if not chunk:
            return out
        out += chunk
    return out
