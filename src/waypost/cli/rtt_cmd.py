"""``waypost rtt``: Consul's round-trip estimate between two nodes from their Vivaldi coordinates.

The arithmetic is serf's (``waypost.coordinates``), so scripts comparing ``consul rtt`` output
with ours see the same digits. Node names match case-insensitively, as Consul's do.

Every catalog node has a coordinate here: one that never sent its own reports serf's starting
coordinate (``/v1/coordinate/nodes`` fills it in), so ``waypost rtt n1``, which measures
against the agent's own node, answers as soon as the agent serves rather than after its
first coordinate sync as in Consul.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from waypost.cli import ui
from waypost.cli.client import Client, ClientError, client_or_report
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.coordinates import Coord, CoordinateError, distance
from waypost.gostrconv import go_quote

USAGE = """
Usage: waypost rtt [options] node1 [node2]

  Estimates the round trip time between two nodes using waypost's network
  coordinate model of the cluster.

  At least one node name is required. If the second node name isn't given, it
  is set to the agent's node name. Note that these are node names as known to
  waypost as "waypost members" would show, not IP addresses.

  By default, the two nodes are assumed to be nodes in the local datacenter
  and the LAN coordinates are used. If the -wan option is given, then the WAN
  coordinates are used, and the node names must be suffixed by a period and
  the datacenter (eg. "myserver.dc1").

  It is not possible to measure between LAN coordinates and WAN coordinates
  because they are maintained by independent Serf gossip areas, so they are
  not compatible.
"""


def intersect(first: Mapping[str, Coord], second: Mapping[str, Coord]) -> tuple[Coord | None, Coord | None]:
    """Consul's ``CoordinateSet.Intersect``: a node in one segment only (a client) decides the
    segment; otherwise both are compared in the default one."""
    segment = ""
    if len(first) == 1:
        segment = next(iter(first))
    if len(second) == 1:
        segment = next(iter(second))
    return first.get(segment), second.get(segment)


def lan_pair(
    entries: Sequence[Mapping[str, Any]], node1: str, node2: str
) -> tuple[Coord | None, Coord | None]:
    """The two nodes' comparable LAN coordinates from ``/v1/coordinate/nodes``."""
    sets: tuple[dict[str, Coord], dict[str, Coord]] = ({}, {})
    for entry in entries:
        name = str(entry.get("Node", "")).casefold()
        for wanted, found in zip((node1, node2), sets, strict=True):
            if name == wanted.casefold():
                found[str(entry.get("Segment") or "")] = entry.get("Coord") or {}
    return intersect(*sets)


def wan_pair(
    areas: Sequence[Mapping[str, Any]], node1: tuple[str, str], node2: tuple[str, str]
) -> tuple[Coord | None, Coord | None]:
    """Two servers' coordinates from ``/v1/coordinate/datacenters``, only within one area:
    the first entry at which both are known in the same area wins, as in Consul."""
    area1 = area2 = ""
    coord1: Coord | None = None
    coord2: Coord | None = None
    for dc in areas:
        for entry in dc.get("Coordinates") or ():
            name = str(entry.get("Node", "")).casefold()
            if dc.get("Datacenter") == node1[1] and name == node1[0].casefold():
                area1, coord1 = str(dc.get("AreaID", "")), entry.get("Coord") or {}
            if dc.get("Datacenter") == node2[1] and name == node2[0].casefold():
                area2, coord2 = str(dc.get("AreaID", "")), entry.get("Coord") or {}
            if area1 == area2 and coord1 is not None and coord2 is not None:
                return coord1, coord2
    return None, None


def _flags() -> FlagSet:
    fs = FlagSet(USAGE, server=False)
    fs.boolean("wan", False, "Use WAN coordinates instead of LAN coordinates.")
    return fs


def _agent_node(client: Client, wan: bool) -> str:
    """The agent's own node, as ``-wan`` spells names (``node.dc``) or as the LAN does."""
    config = (client.get("/v1/agent/self").json() or {}).get("Config") or {}
    node = str(config.get("NodeName", ""))
    return f"{node}.{config.get('Datacenter', '')}" if wan else node


def _coordinates(client: Client, nodes: list[str], wan: bool) -> tuple[Coord | None, Coord | None]:
    if not wan:
        return lan_pair(client.get("/v1/coordinate/nodes").json() or [], nodes[0], nodes[1])
    areas = client.get("/v1/coordinate/datacenters").json() or []
    (node1, dc1), (node2, dc2) = (name.split(".") for name in nodes)
    return wan_pair(areas, (node1, dc1), (node2, dc2))


def _run(opts: Parsed, flags: FlagSet) -> int:
    nodes = list(opts.args)
    if not 1 <= len(nodes) <= 2:
        ui.error(f"One or two node names must be specified\n\n{flags.help()}")
        return 1
    client = client_or_report(opts)
    if client is None:
        return 1
    wan = opts.boolean("wan")
    if len(nodes) < 2:
        try:
            nodes.append(_agent_node(client, wan))
        except (ClientError, ValueError, AttributeError) as exc:
            ui.error(f"Unable to look up agent info: {exc}")
            return 1
    if wan and any(name.count(".") != 1 for name in nodes):
        ui.error("Node names must be specified as <node name>.<datacenter> with -wan")
        return 1
    try:
        coord1, coord2 = _coordinates(client, nodes, wan)
    except (ClientError, ValueError, AttributeError, TypeError) as exc:
        ui.error(f"Error getting coordinates: {exc}")
        return 1
    if coord1 is None or coord2 is None:
        ui.error(f"Could not find a coordinate for node {go_quote(nodes[0] if coord1 is None else nodes[1])}")
        return 1
    try:
        seconds = distance(coord1, coord2)
    except CoordinateError as exc:
        ui.error(f"Error getting coordinates: {exc}")
        return 1
    source = "WAN" if wan else "LAN"
    ui.output(
        f"Estimated {nodes[0]} <-> {nodes[1]} rtt: {seconds * 1000.0:.3f} ms (using {source} coordinates)"
    )
    return 0


def run(argv: Sequence[str]) -> int:
    flags = _flags()
    return run_with_flags(flags, argv, lambda opts: _run(opts, flags))
