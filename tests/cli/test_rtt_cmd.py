"""``waypost rtt`` against a real agent whose coordinates the tests write through
``/v1/coordinate/update``, and serf's distance arithmetic on its own."""

from __future__ import annotations

import math
from typing import Any

import pytest
from cli_support import Runner, run_cli

from waypost.cli.rtt_cmd import intersect, lan_pair, wan_pair
from waypost.coordinates import CoordinateError, distance
from waypost.testing import AgentProcess, free_port, wait_for


def coord(*vec: float, height: float = 0.0, adjustment: float = 0.0) -> dict[str, Any]:
    padded = [*vec, *[0.0] * (8 - len(vec))]
    return {"Vec": padded, "Error": 1.5, "Adjustment": adjustment, "Height": height}


ORIGIN = coord(height=1e-05)


def test_distance_is_vector_distance_plus_heights() -> None:
    a, b = coord(-0.5, 1.3, 2.4), coord(1.2, -2.3, 3.4)
    assert distance(a, b) == pytest.approx(math.sqrt(1.7**2 + 3.6**2 + 1.0**2), abs=1e-9)
    assert distance(a, b) == distance(b, a)
    assert distance(a, a) == 0.0
    high = coord(-0.5, 1.3, 2.4, height=0.7)
    assert distance(high, coord(1.2, -2.3, 3.4, height=0.1)) == pytest.approx(distance(a, b) + 0.8, abs=1e-9)


def test_adjustments_count_only_while_the_sum_stays_positive() -> None:
    a, b = coord(0.01), coord(0.0)
    assert distance(coord(0.01, adjustment=0.1), coord(0.0, adjustment=0.2)) == pytest.approx(0.31, abs=1e-9)
    assert distance(coord(0.01, adjustment=-1e6), b) == pytest.approx(distance(a, b), abs=1e-9)


def test_distance_truncates_to_whole_nanoseconds_as_go_durations_do() -> None:
    assert distance(coord(1.9999999999e-9), coord()) == 1e-9
    assert distance(coord(2.5), coord()) == 2.5


def test_incomparable_coordinates_are_refused() -> None:
    with pytest.raises(CoordinateError, match="dimensionality"):
        distance({"Vec": [0.0] * 3}, coord())
    with pytest.raises(CoordinateError, match="Vec"):
        distance({"Vec": ["x"]}, coord())
    with pytest.raises(CoordinateError, match="Height"):
        distance({"Vec": [0.0] * 8, "Height": "tall"}, coord())


def test_segments_intersect_as_consul_picks_them() -> None:
    server = {"": coord(1.0), "alpha": coord(2.0)}
    client = {"alpha": coord(3.0)}
    assert intersect(server, client) == (server["alpha"], client["alpha"])
    assert intersect(server, {"": coord(4.0), "beta": coord(5.0)}) == (server[""], coord(4.0))
    assert intersect({}, client) == (None, client["alpha"])


def test_lan_and_wan_pairs_match_names_case_insensitively() -> None:
    entries = [{"Node": "Web", "Segment": "", "Coord": coord(1.0)}, {"Node": "db", "Coord": coord(2.0)}]
    assert lan_pair(entries, "web", "DB") == (coord(1.0), coord(2.0))
    assert lan_pair(entries, "web", "nope") == (coord(1.0), None)
    areas = [
        {"Datacenter": "dc1", "AreaID": "wan", "Coordinates": [{"Node": "s1", "Coord": coord(1.0)}]},
        {"Datacenter": "dc2", "AreaID": "other", "Coordinates": [{"Node": "s2", "Coord": coord(2.0)}]},
    ]
    assert wan_pair(areas, ("S1", "dc1"), ("s1", "dc1")) == (coord(1.0), coord(1.0))
    # Servers in different areas are not comparable: neither coordinate is reported.
    assert wan_pair(areas, ("s1", "dc1"), ("s2", "dc2")) == (None, None)
    assert wan_pair(areas, ("s1", "dc2"), ("s1", "dc1")) == (None, None)


@pytest.fixture(scope="module")
def placed(dev_agent: AgentProcess) -> AgentProcess:
    """Two more nodes 123 ms and 40 ms (plus a 5 ms adjustment) from the origin."""
    for name, where in (("dogs", coord(0.123)), ("cats", coord(0.0, 0.04, adjustment=0.005))):
        dev_agent.put("/v1/catalog/register", {"Node": name, "Address": "127.0.0.2"})
        dev_agent.put("/v1/coordinate/update", {"Node": name, "Coord": where})
    wait_for(lambda: len(dev_agent.get("/v1/coordinate/nodes")) == 3 and _stored(dev_agent, "cats"))
    return dev_agent


def _stored(agent: AgentProcess, node: str) -> bool:
    return any(c["Coord"]["Adjustment"] for c in agent.get(f"/v1/coordinate/node/{node}"))


@pytest.mark.usefixtures("placed")
def test_rtt_between_two_nodes(waypost: Runner) -> None:
    r = waypost("rtt", "dogs", "cats")
    expected = math.sqrt(0.123**2 + 0.04**2) + 0.005
    assert (r.code, r.err) == (0, "")
    assert r.out == f"Estimated dogs <-> cats rtt: {expected * 1000:.3f} ms (using LAN coordinates)\n"
    assert r.out == "Estimated dogs <-> cats rtt: 134.341 ms (using LAN coordinates)\n"


@pytest.mark.usefixtures("placed")
def test_second_node_defaults_to_the_agents_own(waypost: Runner) -> None:
    """The agent's node never sent a coordinate: serf's starting one (height 10 µs) stands in."""
    r = waypost("rtt", "DOGS")
    assert (r.code, r.out) == (0, "Estimated DOGS <-> test-node rtt: 123.010 ms (using LAN coordinates)\n")
    alone = waypost("rtt", "test-node")
    assert alone.out == "Estimated test-node <-> test-node rtt: 0.020 ms (using LAN coordinates)\n"


@pytest.mark.usefixtures("placed")
def test_wan_coordinates(waypost: Runner) -> None:
    r = waypost("rtt", "-wan", "TEST-NODE.dc1")
    assert (r.code, r.out) == (
        0,
        "Estimated TEST-NODE.dc1 <-> test-node.dc1 rtt: 0.020 ms (using WAN coordinates)\n",
    )
    missing = waypost("rtt", "-wan", "test-node.dc1", "dc1.nope")
    assert (missing.code, missing.err) == (1, 'Could not find a coordinate for node "test-node.dc1"\n')
    # Only servers are in the WAN pool: an external node has LAN coordinates only.
    external = waypost("rtt", "-wan", "dogs.dc1")
    assert (external.code, external.err) == (1, 'Could not find a coordinate for node "dogs.dc1"\n')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "One or two node names must be specified"),
        (("a", "b", "c"), "One or two node names must be specified"),
        (("-wan", "node1", "node2"), "Node names must be specified as <node name>.<datacenter> with -wan"),
        (
            ("-wan", "node1.dc1", "node2"),
            "Node names must be specified as <node name>.<datacenter> with -wan",
        ),
        (
            ("-wan", "node1", "node2.dc1"),
            "Node names must be specified as <node name>.<datacenter> with -wan",
        ),
        (
            ("-wan", "a.b.c", "node2.dc1"),
            "Node names must be specified as <node name>.<datacenter> with -wan",
        ),
        (("-lan", "a"), "flag provided but not defined: -lan"),
    ],
)
def test_bad_arguments_exit_1(waypost: Runner, args: tuple[str, ...], message: str) -> None:
    r = waypost("rtt", *args)
    assert (r.code, r.out) == (1, "")
    assert r.err.startswith(message + "\n")


def test_unknown_nodes_exit_1(waypost: Runner) -> None:
    r = waypost("rtt", "nope")
    assert (r.code, r.out, r.err) == (1, "", 'Could not find a coordinate for node "nope"\n')
    r = waypost("rtt", "test-node", "nope")
    assert (r.code, r.err) == (1, 'Could not find a coordinate for node "nope"\n')


def test_help_goes_to_stdout(waypost: Runner) -> None:
    r = waypost("rtt", "-h")
    assert r.code == 0
    assert r.out.startswith("Usage: waypost rtt [options] node1 [node2]")
    assert "-wan" in r.out


def test_unreachable_agent_is_reported() -> None:
    nobody = f"127.0.0.1:{free_port()}"
    r = run_cli(None, "rtt", "-http-addr", nobody, "a")
    assert r.code == 1
    assert r.err.startswith("Unable to look up agent info: ")
    r = run_cli(None, "rtt", "-http-addr", nobody, "a", "b")
    assert r.code == 1
    assert r.err.startswith("Error getting coordinates: ")
    r = run_cli(None, "rtt", "-http-addr", "ftp://" + nobody, "a", "b")
    assert (r.code, r.err) == (1, "Error connecting to Consul agent: Unknown protocol scheme: ftp\n")
