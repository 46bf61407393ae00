"""``waypost force-leave``: move a member that will not come back to the "left" state."""

from __future__ import annotations

from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.client import ClientError, client_or_report
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost force-leave [options] name

  Forces a member of a waypost cluster to enter the "left" state. Note
  that if the member is still actually alive, it will eventually rejoin
  the cluster. This command is most useful for cleaning out "failed" nodes
  that are never coming back. If you do not force leave a failed node,
  its catalog entries stay, with a critical serfHealth check.
"""


def _flags() -> FlagSet:
    fs = FlagSet(USAGE, server=False)
    fs.boolean("prune", False, "Remove agent completely from list of members")
    fs.boolean("wan", False, "Exclusively leave the agent from the WAN serf pool.")
    fs.string("partition", "", "(Enterprise-only) The admin partition to use.", "default")
    return fs


def _run(opts: Parsed) -> int:
    if len(opts.args) != 1:
        ui.error("A single node name must be specified to force leave.")
        ui.error("")
        ui.error(_flags().help())
        return 1
    query = {
        "prune": "1" if opts.boolean("prune") else None,
        "wan": "1" if opts.boolean("wan") else None,
        "partition": opts.string("partition") or None,
    }
    client = client_or_report(opts)
    if client is None:
        return 1
    try:
        client.put(f"/v1/agent/force-leave/{opts.args[0]}", query)
    except ClientError as exc:
        ui.error(f"Error force leaving: {exc}")
        return 1
    return 0


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _run)
