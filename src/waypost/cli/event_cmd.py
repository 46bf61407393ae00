"""``waypost event``: fire a user event that watches and handlers across the datacenter react to."""

from __future__ import annotations

import re
from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.client import ClientError, connect
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost event [options] [payload]

  Dispatches a custom user event across a datacenter. An event must provide a
  name, but a payload is optional. Events support filtering using regular
  expressions on node name, service, and tag definitions.

      $ waypost event -name=deploy
      $ waypost event -name=deploy -service=web -tag=v2 "build 1234"
"""


def _flags() -> FlagSet:
    fs = FlagSet(USAGE, server=False)
    fs.string("name", "", "Name of the event.", "string")
    fs.string("node", "", "Regular expression to filter on node names.", "string")
    fs.string("service", "", "Regular expression to filter on service instances.", "string")
    fs.string(
        "tag", "", "Regular expression to filter on service tags. Must be used with -service.", "string"
    )
    return fs


def _run(opts: Parsed, flags: FlagSet) -> int:
    name = opts.string("name")
    if not name:
        ui.error(f"Event name must be specified\n\n{flags.help()}")
        return 1
    for what in ("node", "service", "tag"):
        try:
            re.compile(opts.string(what))
        except re.error as exc:
            ui.error(f"Failed to compile {what} filter regexp: {exc}")
            return 1
    if opts.string("tag") and not opts.string("service"):
        ui.error("Cannot provide tag filter without service filter.")
        return 1
    if len(opts.args) > 1:
        ui.error(f"Too many command line arguments.\n\n{flags.help()}")
        return 1
    payload = opts.args[0].encode() if opts.args else None
    connected = connect(opts)
    if connected is None:
        return 1
    client = connected[0]
    query = {k: opts.string(k) or None for k in ("node", "service", "tag")}
    try:
        event = client.put(f"/v1/event/fire/{name}", query, payload).json()
    except ClientError as exc:
        ui.error(f"Error firing event: {exc}")
        return 1
    ui.output(f"Event ID: {event.get('ID', '')}")
    return 0


def run(argv: Sequence[str]) -> int:
    flags = _flags()
    return run_with_flags(flags, argv, lambda opts: _run(opts, flags))
