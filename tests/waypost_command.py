"""A ``waypost`` subcommand (proxy, connect proxy, ...) run as a real process for the length
of a ``with`` block, its output in a log file a failing test can point at.

Not a test module. On leaving the block the process gets SIGTERM, as a supervisor would
send, and is killed only if it has not exited within ``stop_within`` seconds.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["waypost_running"]


@contextlib.contextmanager
def waypost_running(log: Path, *args: str, stop_within: float = 10) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "waypost", *args], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=stop_within)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
