"""``dig`` against an agent's DNS port, for tests that check answers as a resolver sees them.

Not a test module. One try with a 2 second timeout, so a test waiting on an answer bounds
its own loop.
"""

from __future__ import annotations

import subprocess

from waypost.testing import AgentProcess

__all__ = ["dig"]


def dig(agent: AgentProcess, name: str, qtype: str = "A", *, tcp: bool = False) -> list[str]:
    """The answer's records as ``+short`` prints them, sorted, since service answers are shuffled."""
    args = ["dig", "@127.0.0.1", "-p", str(agent.dns_port), "+short", "+time=2", "+tries=1", name, qtype]
    if tcp:
        args.insert(1, "+tcp")
    out = subprocess.run(args, capture_output=True, text=True, timeout=10)
    return sorted(line for line in out.stdout.splitlines() if line and not line.startswith(";"))
