"""The views a client agent keeps from a server's delta streams, fed events by
hand: snapshots swap in whole, a write's events apply together at its id, and the answers
are the servers' rows byte for byte, filtered as the servers filter them."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from waypost.agent.health_view import HealthView
from waypost.agent.services_view import ServicesView
from waypost.agent.stream_view import BadEvent
from waypost.stream.sse import StreamEvent


def row(
    node: str, sid: str, status: str = "passing", tags: tuple[str, ...] = (), **meta: str
) -> dict[str, Any]:
    """A CheckServiceNode as the servers' stream and list endpoint show it (empty maps null)."""
    return {
        "Node": {"ID": "", "Node": node, "Address": "10.0.0.1", "Datacenter": "dc1", "TaggedAddresses": None,
                 "Meta": dict(meta) or None, "CreateIndex": 5, "ModifyIndex": 5},
        "Service": {"ID": sid, "Service": "web", "Tags": list(tags), "Address": "", "Meta": None, "Port": 80,
                    "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": False,
                    "CreateIndex": 6, "ModifyIndex": 6},
        "Checks": [{"Node": node, "CheckID": f"service:{sid}", "Name": "alive", "Status": status, "Notes": "",
                    "Output": "", "ServiceID": sid, "ServiceName": "web", "ServiceTags": list(tags),
                    "Type": "ttl", "CreateIndex": 6, "ModifyIndex": 6}],
    }  # fmt: skip


def up(data: dict[str, Any], index: int | None = None) -> StreamEvent:
    return StreamEvent("upsert", data, index)


def snapshot(view: HealthView, *rows: dict[str, Any], index: int = 10) -> None:
    for data in rows:
        assert not view.apply(up(data))
    assert view.apply(StreamEvent("end-of-snapshot", {"Index": index}, index))


def addresses(view: HealthView, **kwargs: Any) -> list[str]:
    return [f"{e['Node']['Node']}/{e['Service']['ID']}" for e in json.loads(view.body(**kwargs))]


def test_the_answer_is_the_rows_as_sent_in_the_servers_order() -> None:
    view = HealthView("web")
    first, second = row("n2", "web-1"), row("n1", "web-2")
    snapshot(view, first, second)
    assert view.ready
    assert view.index == 10
    assert view.body() == b"[" + orjson.dumps(second) + b"," + orjson.dumps(first) + b"]"


def test_a_snapshot_shows_only_once_whole() -> None:
    view = HealthView("web")
    assert not view.apply(up(row("n1", "a")))
    assert not view.ready
    snapshot(view, row("n2", "b"))
    assert addresses(view) == ["n1/a", "n2/b"]
    view.apply(StreamEvent("new-snapshot", None))
    view.apply(up(row("n3", "c")))
    assert addresses(view) == ["n1/a", "n2/b"]  # the old one until the end
    assert view.index == 10
    assert view.apply(StreamEvent("end-of-snapshot", {"Index": 30}, 30))
    assert addresses(view) == ["n3/c"]
    assert view.index == 30


def test_the_events_of_one_write_apply_together_at_its_id() -> None:
    view = HealthView("web")
    snapshot(view, row("n1", "a"), row("n1", "b"))
    assert not view.apply(up(row("n1", "a", "critical")))
    assert addresses(view, passing=True) == ["n1/a", "n1/b"]  # half a write is not shown
    assert view.apply(up(row("n1", "b", "critical"), 11))
    assert addresses(view, passing=True) == []
    assert view.index == 11
    assert view.apply(StreamEvent("delete", row("n1", "a", "critical"), 12))
    assert addresses(view) == ["n1/b"]


def test_a_cut_stream_drops_the_unfinished_write() -> None:
    view = HealthView("web")
    snapshot(view, row("n1", "a"))
    view.apply(up(row("n2", "b")))
    view.cut()
    assert view.apply(up(row("n3", "c"), 11))
    assert addresses(view) == ["n1/a", "n3/c"]


def test_parameters_filter_as_on_the_servers() -> None:
    view = HealthView("web")
    snapshot(
        view,
        row("n1", "a", tags=("v1", "Primary"), rack="r1"),
        row("n2", "b", "warning", tags=("v2",), rack="r2"),
        row("n3", "c", "critical", tags=("v1",)),
    )
    assert addresses(view, tags=["v1"]) == ["n1/a", "n3/c"]
    assert addresses(view, tags=["v1", "primary"]) == ["n1/a"]
    assert addresses(view, node_meta=[("rack", "r2")]) == ["n2/b"]
    assert addresses(view, passing=True) == ["n1/a"]
    assert addresses(view, keep=lambda r: r["Service"].Port == 80 and r["Node"].Meta.get("rack") == "r1") == [
        "n1/a"
    ]


def test_dns_instances_carry_the_worst_check_and_match_tags_without_case() -> None:
    view = HealthView("web")
    snapshot(view, row("n1", "a", tags=("Primary",)), row("n2", "b", "critical"))
    assert [(i.node.name, i.status) for i in view.instances()] == [("n1", "passing"), ("n2", "critical")]
    assert [i.node.name for i in view.instances("primary")] == ["n1"]


@pytest.mark.parametrize(
    "event",
    [
        StreamEvent("upsert", {"Node": "n1"}),
        StreamEvent("upsert", None),
        StreamEvent("upsert", {"Node": {"Node": 5}, "Service": {"ID": "a", "Service": "web"}}),
        StreamEvent("end-of-snapshot", {}, None),
    ],
)
def test_a_malformed_event_is_refused(event: StreamEvent) -> None:
    with pytest.raises(BadEvent):
        HealthView("web").apply(event)


def test_unknown_events_and_keepalives_change_nothing() -> None:
    view = HealthView("web")
    snapshot(view, row("n1", "a"))
    assert not view.apply(StreamEvent("something-new", {"x": 1}, 99))
    assert view.index == 10


def test_the_services_view_answers_the_catalogs_list_in_name_order() -> None:
    view = ServicesView("")
    view.apply(up({"web": ["v1", "v2"]}))
    view.apply(up({"api": []}))
    assert view.apply(StreamEvent("end-of-snapshot", {"Index": 7}, 7))
    assert view.body() == b'{"api":[],"web":["v1","v2"]}'
    view.apply(StreamEvent("delete", {"web": ["v1", "v2"]}))
    assert view.apply(up({"db": ["x"]}, 8))
    assert view.body() == b'{"api":[],"db":["x"]}'


@pytest.mark.parametrize("data", [None, {"a": 1}, {"a": [1]}, {"a": [], "b": []}, ["web"]])
def test_a_malformed_service_entry_is_refused(data: Any) -> None:
    with pytest.raises(BadEvent):
        ServicesView("").apply(up(data))
