"""Running the real ``waypost`` command line in a subprocess, as a user or a script would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from waypost.testing import AgentProcess


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Runner = Callable[..., Result]


def run_cli(
    agent: AgentProcess | None,
    *args: str,
    stdin: bytes | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> Result:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSUL_", "WAYPOST_"))}
    if agent is not None:
        full_env["CONSUL_HTTP_ADDR"] = agent.address
    full_env.update(env or {})
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "waypost", *args],
        input=data if data is not None else b"",
        capture_output=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
