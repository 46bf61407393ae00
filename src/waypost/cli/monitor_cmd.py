"""``waypost monitor``: follow a running agent's log over HTTP, without shell access to its host."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from types import FrameType

from waypost.cli import ui
from waypost.cli.client import ClientError, QueryValue, StatusError, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost monitor [options]

  Shows recent log messages of an agent, and attaches to the agent, outputting
  log messages as they occur in real time. The monitor lets you listen for log
  levels that may be filtered out of the agent's own output. Stop with Ctrl-C.

      $ waypost monitor
      $ waypost monitor -log-level=debug
      $ waypost monitor -log-json
"""


class _Stop(Exception):
    pass


def _flags() -> FlagSet:
    fs = FlagSet(USAGE, server=False)
    fs.string("log-level", "INFO", "Log level of the agent.", "string")
    fs.boolean("log-json", False, "Output logs in JSON format.")
    return fs


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def _run(opts: Parsed) -> int:
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    query: dict[str, QueryValue] = {
        "loglevel": opts.string("log-level").lower(),
        "logjson": opts.boolean("log-json"),
    }
    try:
        for line in client_from(opts).stream("/v1/agent/monitor", query):
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
    except _Stop:
        return 0
    except StatusError as exc:
        hint = " (this agent has no /v1/agent/monitor endpoint)" if exc.status == 404 else ""
        ui.error(f"Error starting monitor: {exc}{hint}")
        return 1
    except ClientError as exc:
        ui.error(f"Error starting monitor: {exc}")
        return 1
    ui.output(
        "Remote side ended the monitor! This usually means that the\nremote side has exited or crashed."
    )
    return 1


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _run)
