"""``waypost join``: ask the local agent to join the cluster through one or more servers."""

from __future__ import annotations

from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.client import ClientError, client_or_report
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost join [options] address ...

  Tells a running waypost agent (with "waypost agent") to join the cluster
  by specifying at least one existing server. An address is host[:port] of a
  server agent's agent-to-server listener (its server port, 8300 by default).

      $ waypost join 10.0.0.10
      $ waypost join 10.0.0.10:8300 10.0.0.11:8300
"""


def _flags() -> FlagSet:
    fs = FlagSet(USAGE, server=False)
    fs.boolean("wan", False, "Joins a server to another server in the WAN pool.")
    return fs


def _run(opts: Parsed) -> int:
    if not opts.args:
        ui.error("At least one address to join must be specified.")
        ui.error("")
        ui.error(_flags().help())
        return 1
    client = client_or_report(opts)
    if client is None:
        return 1
    joins = 0
    for address in opts.args:
        try:
            client.put(f"/v1/agent/join/{address}", {"wan": "1" if opts.boolean("wan") else None})
        except ClientError as exc:
            ui.error(f"Error joining address '{address}': {exc}")
        else:
            joins += 1
    if joins == 0:
        ui.error("Failed to join any nodes.")
        return 1
    ui.output(f"Successfully joined cluster by contacting {joins} nodes.")
    return 0


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _run)
