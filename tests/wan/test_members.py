"""The WAN pool table: hearsay adds servers, only first-hand probes change their status."""

from __future__ import annotations

import pytest

from waypost.testing import ManualClock
from waypost.wan.members import ALIVE, FAILED, LEFT, WanEntry, WanMembers, valid


def entry(name: str, dc: str = "dc2", port: int = 8500, status: int = ALIVE) -> WanEntry:
    return WanEntry(name, dc, f"http://127.0.0.1:{port}", f"127.0.0.1:{port + 100}", status)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(100.0)


@pytest.fixture
def table(clock: ManualClock) -> WanMembers:
    return WanMembers("dc1", clock=clock, suspicion=3, reconnect_timeout=60.0)


def test_learning_adds_only_servers_of_other_datacenters_and_reports_the_new_ones(table: WanMembers) -> None:
    new = table.learn([entry("s1"), entry("s2", "dc1"), entry("s3", "dc3"), WanEntry("", "dc2", "http://x")])
    assert [s.key for s in new] == ["s1.dc2", "s3.dc3"]
    assert table.learn([entry("s1")]) == []
    assert [s.key for s in table.servers()] == ["s1.dc2", "s3.dc3"]


def test_hearsay_never_changes_the_status_of_a_known_server(table: WanMembers) -> None:
    table.learn([entry("s1")])
    table.learn([entry("s1", status=FAILED)])
    server = table.get("s1.dc2")
    assert server is not None
    assert server.status == ALIVE


def test_an_address_only_heard_of_is_refreshed_by_later_hearsay(table: WanMembers) -> None:
    table.learn([entry("s1", port=8500)])
    table.learn([entry("s1", port=9500)])
    server = table.get("s1.dc2")
    assert server is not None
    assert (server.url, server.dns) == ("http://127.0.0.1:9500", "127.0.0.1:9600")


def test_hearsay_never_moves_a_server_that_answered_at_its_address(table: WanMembers) -> None:
    table.answered(entry("s1", port=8500), 0.01)
    assert table.learn([entry("s1", port=9500)]) == []
    server = table.get("s1.dc2")
    assert server is not None
    assert (server.url, server.dns, server.confirmed) == ("http://127.0.0.1:8500", "127.0.0.1:8600", True)


def test_hearsay_moves_a_server_failed_past_the_reclaim_time(table: WanMembers, clock: ManualClock) -> None:
    table.answered(entry("s1", port=8500), 0.01)
    for _ in range(3):
        table.missed("s1.dc2")
    server = table.get("s1.dc2")
    assert server is not None
    assert server.status == FAILED
    clock.now += 29
    table.learn([entry("s1", port=9500)])
    assert server.url == "http://127.0.0.1:8500"
    clock.now += 1
    table.learn([entry("s1", port=9500)])
    assert (server.url, server.status, server.confirmed) == ("http://127.0.0.1:9500", FAILED, False)
    table.answered(entry("s1", port=9500), 0.01)
    assert (server.status, server.confirmed) == (ALIVE, True)


def test_hearsay_moves_a_server_that_left(table: WanMembers) -> None:
    table.answered(entry("s1", port=8500, status=LEFT), None)
    table.learn([entry("s1", port=9500)])
    server = table.get("s1.dc2")
    assert server is not None
    assert (server.url, server.status) == ("http://127.0.0.1:9500", LEFT)


def test_missed_probes_fail_a_server_after_the_suspicion_count_and_one_answer_revives_it(
    table: WanMembers, clock: ManualClock
) -> None:
    table.learn([entry("s1")])
    for _ in range(2):
        table.missed("s1.dc2")
    server = table.get("s1.dc2")
    assert server is not None
    assert server.status == ALIVE
    clock.now = 130.0
    table.missed("s1.dc2")
    assert (server.status, server.since) == (FAILED, 130.0)
    assert table.route("dc2") == []
    table.answered(entry("s1"), 0.004)
    assert (server.status, server.failures, server.rtt) == (ALIVE, 0, 0.004)


def test_round_trips_are_smoothed(table: WanMembers) -> None:
    table.answered(entry("s1"), 0.010)
    table.answered(entry("s1"), 0.002)
    assert table.rtt_to("s1.dc2") == pytest.approx(0.008)


def test_a_server_that_says_it_left_stays_left_and_is_not_probed_into_failed(table: WanMembers) -> None:
    table.answered(entry("s1", status=LEFT), None)
    for _ in range(5):
        table.missed("s1.dc2")
    server = table.get("s1.dc2")
    assert server is not None
    assert server.status == LEFT


def test_requests_go_to_the_nearest_alive_server(table: WanMembers) -> None:
    table.answered(entry("far", port=1), 0.050)
    table.answered(entry("near", port=2), 0.001)
    table.learn([entry("unmeasured", port=3)])
    table.answered(entry("dead", port=4), 0.0001)
    for _ in range(3):
        table.missed("dead.dc2")
    assert [s.name for s in table.route("dc2")] == ["near", "far", "unmeasured"]
    assert table.route("dc9") == []


def test_datacenters_by_distance_orders_by_median_round_trip_unmeasured_last(table: WanMembers) -> None:
    table.answered(entry("a", "dc2", 1), 0.030)
    table.answered(entry("b", "dc2", 2), 0.001)
    table.answered(entry("c", "dc2", 3), 0.040)
    table.answered(entry("d", "dc3", 4), 0.020)
    table.learn([entry("e", "dc0", 5), entry("f", "dc4", 6)])
    assert table.datacenters_by_distance() == ["dc3", "dc2", "dc0", "dc4"]


def test_servers_failed_past_the_reconnect_timeout_are_forgotten(
    table: WanMembers, clock: ManualClock
) -> None:
    table.answered(entry("s1"), 0.001)
    table.answered(entry("s2", port=2), 0.001)
    for _ in range(3):
        table.missed("s1.dc2")
    clock.now += 59.0
    assert table.reap() == []
    clock.now += 1.0
    assert table.reap() == ["s1.dc2"]
    assert [s.key for s in table.servers()] == ["s2.dc2"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (WanEntry("", "dc2", "http://h:1"), "Name is empty"),
        (WanEntry("s", "dc 2", "http://h:1"), "Datacenter 'dc 2' is not a datacenter name"),
        (WanEntry("s", "dc2", "ftp://h:1"), "URL 'ftp://h:1' is not an http:// or https:// URL"),
        (WanEntry("s", "dc2", "http://h:1", Status=7), "Status 7 is not a member status"),
    ],
)
def test_an_entry_that_cannot_be_taken_says_why(bad: WanEntry, message: str) -> None:
    assert valid(bad) == message


def test_a_mirror_is_the_servers_view_status_and_round_trips_included(table: WanMembers) -> None:
    table.learn([entry("old")])
    far = WanEntry("s1", "dc2", "http://127.0.0.1:1", "127.0.0.1:2", FAILED, 0.004)
    near = WanEntry("s2", "dc3", "http://127.0.0.1:3", "127.0.0.1:4", ALIVE, 0.001)
    table.mirror([far, near, WanEntry("me", "dc1", "http://127.0.0.1:5")])
    assert [(s.key, s.status, s.rtt) for s in table.servers()] == [
        ("s1.dc2", FAILED, 0.004),
        ("s2.dc3", ALIVE, 0.001),
    ]
    assert table.datacenters_by_distance() == ["dc3", "dc2"]
