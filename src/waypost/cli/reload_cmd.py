"""``waypost reload``: re-read the agent's configuration files without a restart (like SIGHUP, remotely)."""

from __future__ import annotations

from collections.abc import Sequence

from waypost.cli.client import agent_action
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost reload [options]

  Causes the agent to reload configurations. This can be used instead of
  sending the SIGHUP signal to the agent.

      $ waypost reload
"""


def _run(opts: Parsed) -> int:
    return agent_action(opts, "/v1/agent/reload", "Error reloading", "Configuration reload triggered")


def run(argv: Sequence[str]) -> int:
    return run_with_flags(FlagSet(USAGE, server=False), argv, _run)
