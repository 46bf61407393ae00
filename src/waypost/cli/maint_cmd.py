"""``waypost maint``: take a node or one service out of the pool, and see what is out."""

from __future__ import annotations

from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.client import ClientError, connect
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost maint [options]

  Places a node or service into maintenance mode. During maintenance mode, the
  node or service is excluded from all queries through the DNS or API
  interfaces, by registering an additional critical health check. An optional
  reason appears in that check's Notes. Maintenance mode persists across agent
  restarts until disabled.

  With no arguments the agent's maintenance status is shown (blank when
  nothing is under maintenance).

      $ waypost maint
      $ waypost maint -enable -reason="kernel upgrade"
      $ waypost maint -enable -service=web-1
      $ waypost maint -disable -service=web-1
"""


def _flags() -> FlagSet:
    fs = FlagSet(USAGE, server=False)
    fs.boolean("enable", False, "Enable maintenance mode.")
    fs.boolean("disable", False, "Disable maintenance mode.")
    fs.string("reason", "", "Text describing the maintenance reason.", "string")
    fs.string("service", "", "Control maintenance mode for a specific service ID.", "string")
    return fs


def _list(client_node: str, checks: dict[str, dict[str, str]]) -> None:
    for check in checks.values():
        if check.get("CheckID") == "_node_maintenance":
            ui.output(f"Node:\n  Name:   {client_node}\n  Reason: {check.get('Notes', '')}\n")
        elif str(check.get("CheckID", "")).startswith("_service_maintenance:"):
            ui.output(
                f"Service:\n  ID:     {check.get('ServiceID', '')}\n  Reason: {check.get('Notes', '')}\n"
            )


def _run(opts: Parsed) -> int:
    enable, disable, reason, service = (
        opts.boolean("enable"),
        opts.boolean("disable"),
        opts.string("reason"),
        opts.string("service"),
    )
    if enable and disable:
        ui.error("Only one of -enable or -disable may be provided")
        return 1
    if not enable and reason:
        ui.error("Reason may only be provided with -enable")
        return 1
    if not enable and not disable and service:
        ui.error("Service requires either -enable or -disable")
        return 1
    connected = connect(opts)
    if connected is None:
        return 1
    client, node = connected
    if not enable and not disable:
        try:
            _list(node, client.get("/v1/agent/checks").json() or {})
        except ClientError as exc:
            ui.error(f"Error getting checks: {exc}")
            return 1
        return 0
    verb = "enabl" if enable else "disabl"
    path = f"/v1/agent/service/maintenance/{service}" if service else "/v1/agent/maintenance"
    try:
        client.put(path, {"enable": "true" if enable else "false", "reason": reason or None})
    except ClientError as exc:
        ui.error(f"Error {verb}ing {'service' if service else 'node'} maintenance: {exc}")
        return 1
    ui.output(
        f'Service maintenance is now {verb}ed for "{service}"'
        if service
        else f"Node maintenance is now {verb}ed"
    )
    return 0


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _run)
