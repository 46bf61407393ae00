"""``waypost operator raft list-peers`` and ``operator autopilot get-config``, laid out as Consul's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from, client_or_report
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.cli.group import Subcommand, dispatch

LIST_PEERS_USAGE = """
Usage: waypost operator raft list-peers [options]

  Displays the current Raft peer configuration: the server agents and which one
  leads. With an etcd store, the etcd members and their health follow.
"""

GET_CONFIG_USAGE = """
Usage: waypost operator autopilot get-config [options]

  Displays the current Autopilot configuration.
"""

_HEADER = ["Node", "ID", "Address", "State", "Voter", "RaftProtocol", "Commit Index", "Trails Leader By"]


def _trails(behind: int) -> str:
    return f"{behind} Commit" if behind <= 1 else f"{behind} Commits"


def _server_rows(config: dict[str, Any], health: dict[str, Any]) -> list[list[str]]:
    """Consul's rows: commit index and lag from autopilot's view of each server."""
    last = {s["ID"]: int(s.get("LastIndex", 0)) for s in health.get("Servers") or []}
    leader_index = next((last.get(s["ID"], 0) for s in config["Servers"] if s.get("Leader")), 0)
    rows = []
    for s in config["Servers"]:
        row = [s["Node"], s["ID"], s["Address"], "leader" if s["Leader"] else "follower"]
        row += [str(bool(s["Voter"])).lower(), s.get("ProtocolVersion") or "<=1"]
        if s["ID"] in last:
            row += [str(last[s["ID"]]), "_" if s["Leader"] else _trails(leader_index - last[s["ID"]])]
        else:
            row += ["_"]
        rows.append(row)
    return rows


def _etcd_rows(members: list[dict[str, Any]]) -> list[list[str]]:
    leader_index = next((m["RaftIndex"] for m in members if m["Leader"]), 0)
    rows = []
    for m in members:
        address = (m["PeerURLs"] or m["ClientURLs"] or [""])[0].split("://", 1)[-1]
        if not m["Healthy"]:
            state = f"unhealthy ({m['Error']})" if m["Error"] else "unhealthy"
            rows.append([m["Name"], m["ID"], address, state, str(not m["Learner"]).lower(), "etcd", "_", "_"])
            continue
        state = "leader" if m["Leader"] else "learner" if m["Learner"] else "follower"
        lag = "_" if m["Leader"] else _trails(max(0, leader_index - m["RaftIndex"]))
        rows.append(
            [
                m["Name"],
                m["ID"],
                address,
                state,
                str(not m["Learner"]).lower(),
                "etcd",
                str(m["RaftIndex"]),
                lag,
            ]
        )
    return rows


def _list_peers(opts: Parsed) -> int:
    if opts.args:
        ui.error(f"Too many arguments (expected 0, got {len(opts.args)})")
        return 1
    client = client_or_report(opts, "Error initializing client")
    if client is None:
        return 1
    try:
        config = client.get("/v1/operator/raft/configuration").json()
    except ClientError as exc:
        ui.error(f"Error getting peers: Failed to retrieve raft configuration: {exc}")
        return 1
    try:
        health = client.get("/v1/operator/autopilot/health", allow=(200, 429)).json()
    except ClientError as exc:
        ui.error(f"Error getting peers: Failed to retrieve autopilot health: {exc}")
        return 1
    ui.output(ui.columnize([_HEADER, *_server_rows(config, health)]))
    if config.get("Etcd"):
        ui.output("\netcd members:")
        ui.output(ui.columnize([_HEADER, *_etcd_rows(config["Etcd"])]))
    return 0


def _get_config(opts: Parsed) -> int:
    try:
        conf = client_from(opts).get("/v1/operator/autopilot/configuration").json()
    except ClientError as exc:
        ui.error(f"Error querying Autopilot configuration: {exc}")
        return 1
    lines = [
        f"CleanupDeadServers = {str(conf['CleanupDeadServers']).lower()}",
        f"LastContactThreshold = {conf['LastContactThreshold']}",
        f"MaxTrailingLogs = {conf['MaxTrailingLogs']}",
        f"MinQuorum = {conf['MinQuorum']}",
        f"ServerStabilizationTime = {conf['ServerStabilizationTime']}",
        f'RedundancyZoneTag = "{conf["RedundancyZoneTag"]}"',
        f"DisableUpgradeMigration = {str(conf['DisableUpgradeMigration']).lower()}",
        f'UpgradeVersionTag = "{conf["UpgradeVersionTag"]}"',
    ]
    ui.output("\n".join(lines))
    return 0


RAFT: dict[str, Subcommand] = {
    "list-peers": (
        lambda a: run_with_flags(FlagSet(LIST_PEERS_USAGE), a, _list_peers),
        "Display the current Raft peer configuration",
    ),
}

AUTOPILOT: dict[str, Subcommand] = {
    "get-config": (
        lambda a: run_with_flags(FlagSet(GET_CONFIG_USAGE), a, _get_config),
        "Display the current Autopilot configuration",
    ),
}

SUBCOMMANDS: dict[str, Subcommand] = {
    "raft": (
        lambda a: dispatch(
            "operator raft", "The Raft operator command is used to interact with Raft.", RAFT, a
        ),
        "Displays the Raft peer set of the servers",
    ),
    "autopilot": (
        lambda a: dispatch(
            "operator autopilot", "Interacts with the Autopilot subsystem's configuration.", AUTOPILOT, a
        ),
        "Provides tools for modifying Autopilot configuration",
    ),
}


def run(argv: Sequence[str]) -> int:
    return dispatch(
        "operator",
        "Provides cluster-level tools for operators, such as the Raft peer set.",
        SUBCOMMANDS,
        argv,
    )
