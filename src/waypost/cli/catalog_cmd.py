"""``waypost catalog datacenters|nodes|services``: quick looks at the catalog without curl and jq."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from waypost.cli import ui
from waypost.cli.client import ClientError, QueryValue, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.cli.group import Subcommand, dispatch

DATACENTERS_USAGE = """
Usage: waypost catalog datacenters [options]

  Retrieves the list of all known datacenters.

      $ waypost catalog datacenters
"""

NODES_USAGE = """
Usage: waypost catalog nodes [options]

  Retrieves the list of nodes registered in a given datacenter. By default, the
  datacenter of the local agent is queried.

      $ waypost catalog nodes
      $ waypost catalog nodes -detailed
      $ waypost catalog nodes -service=web
      $ waypost catalog nodes -node-meta="foo=bar"
      $ waypost catalog nodes -near=_agent
"""

SERVICES_USAGE = """
Usage: waypost catalog services [options]

  Retrieves the list of services registered in a given datacenter. By default,
  the datacenter of the local agent is queried.

      $ waypost catalog services
      $ waypost catalog services -tags
      $ waypost catalog services -node=web
      $ waypost catalog services -node-meta="foo=bar"
"""


def _no_extra_args(opts: Parsed) -> bool:
    if opts.args:
        ui.error(f"Too many arguments (expected 0, got {len(opts.args)})")
        return False
    return True


def _node_meta(opts: Parsed) -> list[tuple[str, QueryValue]]:
    return [("node-meta", f"{k}:{v}") for k, v in opts.mapping("node-meta").items()]


def _datacenters(opts: Parsed) -> int:
    if not _no_extra_args(opts):
        return 1
    try:
        dcs = client_from(opts).get("/v1/catalog/datacenters").json() or []
    except ClientError as exc:
        ui.error(f"Error listing datacenters: {exc}")
        return 1
    for dc in dcs:
        ui.output(str(dc))
    return 0


def _kv(mapping: dict[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((mapping or {}).items()))


def _nodes(opts: Parsed) -> int:
    if not _no_extra_args(opts):
        return 1
    detailed = opts.boolean("detailed")
    query: list[tuple[str, QueryValue]] = [
        ("near", opts.string("near") or None),
        ("filter", opts.string("filter") or None),
    ]
    try:
        client = client_from(opts)
        service = opts.string("service")
        path = f"/v1/catalog/service/{service}" if service else "/v1/catalog/nodes"
        found: list[dict[str, Any]] = client.get(path, query + _node_meta(opts)).json()
    except ClientError as exc:
        what = "Error listing nodes for service" if opts.string("service") else "Error listing nodes"
        ui.error(f"{what}: {exc}")
        return 1
    if service:
        found = [
            {
                "ID": s.get("ID", ""),
                "Node": s.get("Node", ""),
                "Address": s.get("Address", ""),
                "Datacenter": s.get("Datacenter", ""),
                "TaggedAddresses": s.get("TaggedAddresses"),
                "Meta": s.get("NodeMeta"),
            }
            for s in found or []
        ]
    if not found:
        ui.error("No nodes match the given query - try expanding your search.")
        return 0
    rows = [["Node", "ID", "Address", "DC"] + (["TaggedAddresses", "Meta"] if detailed else [])]
    for n in found:
        node_id = str(n.get("ID", ""))
        if detailed:
            rows.append(
                [
                    n["Node"],
                    node_id,
                    n["Address"],
                    n["Datacenter"],
                    _kv(n.get("TaggedAddresses")),
                    _kv(n.get("Meta")),
                ]
            )
        else:
            cut = node_id.find("-")
            rows.append([n["Node"], node_id[:cut] if cut > 0 else node_id, n["Address"], n["Datacenter"]])
    ui.output(ui.columnize(rows))
    return 0


def _services(opts: Parsed) -> int:
    if not _no_extra_args(opts):
        return 1
    services: dict[str, list[str]] = {}
    try:
        client = client_from(opts)
        meta = _node_meta(opts)
        if opts.string("node"):
            node = client.get(f"/v1/catalog/node/{opts.string('node')}", meta, allow=(200, 404)).json()
            for svc in ((node or {}).get("Services") or {}).values():
                services.setdefault(svc["Service"], []).extend(svc.get("Tags") or [])
        else:
            services = client.get("/v1/catalog/services", meta).json() or {}
    except ClientError as exc:
        what = "Error listing services for node" if opts.string("node") else "Error listing services"
        ui.error(f"{what}: {exc}")
        return 1
    if not services:
        ui.error("No services match the given query - try expanding your search.")
        return 0
    if opts.boolean("tags"):
        ui.output(
            ui.tabwrite([[name, ",".join(sorted(services[name] or []))] for name in sorted(services)]).strip()
        )
    else:
        for name in sorted(services):
            ui.output(name)
    return 0


def _datacenters_flags() -> FlagSet:
    return FlagSet(DATACENTERS_USAGE)


def _nodes_flags() -> FlagSet:
    fs = FlagSet(NODES_USAGE)
    fs.boolean(
        "detailed",
        False,
        "Output detailed information about the nodes including their addresses and metadata.",
    )
    fs.string(
        "near",
        "",
        'Node name to sort the node list by estimated round-trip time from; "_agent" '
        "uses this agent's node.",
        "string",
    )
    fs.mapping("node-meta", "Metadata to filter nodes with the given key=value pairs. May be repeated.")
    fs.string(
        "service", "", "Service id or name to filter nodes: only nodes providing the service.", "id or name"
    )
    fs.string("filter", "", "Filter expression to use with the request.", "string")
    return fs


def _services_flags() -> FlagSet:
    fs = FlagSet(SERVICES_USAGE)
    fs.string("node", "", "Node id or name for which to list services.", "id or name")
    fs.mapping("node-meta", "Metadata to filter nodes with the given key=value pairs. May be repeated.")
    fs.boolean(
        "tags", False, "Display each service's tags as a comma-separated list beside each service entry."
    )
    return fs


SUBCOMMANDS: dict[str, Subcommand] = {
    "datacenters": (
        lambda a: run_with_flags(_datacenters_flags(), a, _datacenters),
        "Lists all known datacenters",
    ),
    "nodes": (lambda a: run_with_flags(_nodes_flags(), a, _nodes), "Lists all nodes in the given datacenter"),
    "services": (
        lambda a: run_with_flags(_services_flags(), a, _services),
        "Lists all registered services in a datacenter",
    ),
}


def run(argv: Sequence[str]) -> int:
    return dispatch("catalog", "Interacts with the catalog of nodes and services.", SUBCOMMANDS, argv)
