"""Script checks: Nagios plugin conventions, run with no shell unless the old ``Script`` asks.

Exit 0 is passing, 1 warning, anything else (including death by signal) critical.
Each run gets its own process group so a timeout kills the whole tree a shell
script may have spawned, not just its first process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from waypost.checks.base import DEFAULT_OUTPUT_MAX_SIZE, CheckResult, TailBuffer, timed_out
from waypost.checks.definition import CheckDefinition
from waypost.state.model import CheckStatus

__all__ = ["ScriptCheck", "exit_status"]

_READ_SIZE = 64 * 1024


def exit_status(code: int) -> CheckStatus:
    """Nagios' mapping, shared with docker checks."""
    if code == 0:
        return CheckStatus.PASSING
    if code == 1:
        return CheckStatus.WARNING
    return CheckStatus.CRITICAL


class ScriptCheck:
    """Runs ``definition.command`` with stdout and stderr merged, as Consul captures them."""

    default_timeout = 30.0

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        argv = definition.command
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError:
            return CheckResult(CheckStatus.CRITICAL, f'exec: "{argv[0]}": executable file not found in $PATH')
        except OSError as exc:
            return CheckResult(CheckStatus.CRITICAL, f"fork/exec {argv[0]}: {exc.strerror or exc}")
        output = TailBuffer(definition.output_max_size or DEFAULT_OUTPUT_MAX_SIZE)
        try:
            assert process.stdout is not None
            while chunk := await process.stdout.read(_READ_SIZE):
                output.write(chunk)
            code = await process.wait()
        except BaseException:
            # Cancelled by the timeout or by removal: leave no orphans behind.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await asyncio.shield(process.wait())
            raise
        return CheckResult(exit_status(code), output.report())

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        return timed_out(timeout)

    async def close(self) -> None:
        """Nothing pooled: every run is its own process."""
