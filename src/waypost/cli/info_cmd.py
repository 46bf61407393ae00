"""``waypost info``: the agent's Stats grouped as Consul prints them, for bug reports and quick checks."""

from __future__ import annotations

from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost info [options]

  Provides debugging information for operators: the agent's statistics,
  grouped by subsystem.

      $ waypost info
"""


def _run(opts: Parsed) -> int:
    try:
        self_ = client_from(opts).get("/v1/agent/self").json() or {}
    except ClientError as exc:
        ui.error(f"Error querying agent: {exc}")
        return 1
    stats = self_.get("Stats")
    if not isinstance(stats, dict):
        ui.error(f"Agent response did not contain 'Stats' key: {self_}")
        return 1
    for group in sorted(stats):
        ui.output(f"{group}:")
        values = stats[group]
        if not isinstance(values, dict):
            ui.error(f"Got invalid subkey in stats: {values}")
            return 1
        for key in sorted(values):
            ui.output(f"\t{key} = {values[key]}")
    return 0


def run(argv: Sequence[str]) -> int:
    return run_with_flags(FlagSet(USAGE, server=False), argv, _run)
