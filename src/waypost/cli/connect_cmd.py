"""``waypost connect ca get-config|set-config`` and ``waypost connect proxy``, as Consul's."""

from __future__ import annotations

import json
from collections.abc import Sequence

from waypost.cli import proxy_cmd, ui
from waypost.cli.client import ClientError, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.cli.group import Subcommand, dispatch

GET_CONFIG_USAGE = """
Usage: waypost connect ca get-config [options]

  Displays the current Connect Certificate Authority (CA) configuration.

      $ waypost connect ca get-config
"""

SET_CONFIG_USAGE = """
Usage: waypost connect ca set-config [options]

  Modifies the current Connect Certificate Authority (CA) configuration. A change of
  the built-in provider's settings rotates its root; the new root is cross-signed by
  the old one, so certificates in use stay valid.

      $ waypost connect ca set-config -config-file ca.json
"""

_FIELDS = ("Provider", "Config", "State", "ForceWithoutCrossSigning", "CreateIndex", "ModifyIndex")
"""The order Go's encoding/json writes api.CAConfig in."""


def _get_config(opts: Parsed) -> int:
    if opts.args:
        ui.error(f"Too many arguments (expected 0, got {len(opts.args)})")
        return 1
    try:
        config = client_from(opts).get("/v1/connect/ca/configuration").json()
    except ClientError as exc:
        ui.error(f"Error request CA configuration: {exc}")
        return 1
    ordered = {key: config.get(key) for key in _FIELDS}
    ordered["Config"] = dict(sorted((ordered["Config"] or {}).items()))
    ui.output(json.dumps(ordered, indent="\t"))
    return 0


def _set_config(opts: Parsed) -> int:
    path = opts.string("config-file")
    if not path:
        ui.error("The -config-file flag is required")
        return 1
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        ui.error(f"Error reading config file: {exc.strerror or exc}")
        return 1
    try:
        config = json.loads(raw)
    except ValueError as exc:
        ui.error(f"Error parsing config file: {exc}")
        return 1
    if not isinstance(config, dict):
        ui.error("Error parsing config file: expected a JSON object")
        return 1
    try:
        client_from(opts).put("/v1/connect/ca/configuration", body=json.dumps(config).encode())
    except ClientError as exc:
        ui.error(f"Error setting CA configuration: {exc}")
        return 1
    ui.output("Configuration updated!")
    return 0


def _set_flags() -> FlagSet:
    flags = FlagSet(SET_CONFIG_USAGE)
    flags.string("config-file", "", "The path to the config file to use.", "path")
    return flags


CA: dict[str, Subcommand] = {
    "get-config": (
        lambda a: run_with_flags(FlagSet(GET_CONFIG_USAGE), a, _get_config),
        "Display the current Connect Certificate Authority (CA) configuration",
    ),
    "set-config": (
        lambda a: run_with_flags(_set_flags(), a, _set_config),
        "Modify the current Connect CA configuration",
    ),
}

SUBCOMMANDS: dict[str, Subcommand] = {
    "ca": (
        lambda a: dispatch("connect ca", "Interacts with the Connect Certificate Authority (CA).", CA, a),
        "Interact with the Consul Connect Certificate Authority (CA)",
    ),
    "proxy": (proxy_cmd.run, "Runs a Consul Connect proxy (waypost proxy -sidecar-for)"),
}


def run(argv: Sequence[str]) -> int:
    return dispatch(
        "connect",
        "Interacts with Connect: its Certificate Authority and the built-in sidecar proxy.",
        SUBCOMMANDS,
        argv,
    )
