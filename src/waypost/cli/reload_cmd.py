"""``waypost reload``: re-read the agent's configuration files without a restart (like SIGHUP, remotely)."""

from __future__ import annotations

from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost reload [options]

  Causes the agent to reload configurations. This can be used instead of
  sending the SIGHUP signal to the agent.

      $ waypost reload
"""


def _run(opts: Parsed) -> int:
    try:
        client_from(opts).put("/v1/agent/reload")
    except ClientError as exc:
        ui.error(f"Error reloading: {exc}")
        return 1
    ui.output("Configuration reload triggered")
    return 0


def run(argv: Sequence[str]) -> int:
    return run_with_flags(FlagSet(USAGE, server=False), argv, _run)
