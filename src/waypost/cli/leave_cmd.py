"""``waypost leave``: shut an agent down gracefully so the cluster sees it as left, not failed."""

from __future__ import annotations

from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.client import agent_action
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost leave [options]

  Causes the agent to gracefully leave the cluster and shut down.

      $ waypost leave
      $ waypost leave -http-addr=10.0.0.5:8500
"""


def _run(opts: Parsed) -> int:
    if opts.args:
        ui.error(f"Error! Too many arguments (expected 0, got {len(opts.args)})")
        return 1
    return agent_action(opts, "/v1/agent/leave", "Error leaving", "Graceful leave complete")


def run(argv: Sequence[str]) -> int:
    return run_with_flags(FlagSet(USAGE, server=False), argv, _run)
