"""The README's "Trying it" commands work as written against a real dev agent."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from waypost.testing import AgentProcess

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("dig") is None, reason="needs curl and dig"
)


def trying_it_commands() -> list[str]:
    section = README.read_text().split("## Trying it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_trying_it(dev_agent: AgentProcess) -> None:
    outputs = []
    for command in trying_it_commands():
        local = command.replace("localhost:8500", dev_agent.address).replace(
            "-p 8600", f"-p {dev_agent.dns_port}"
        )
        done = subprocess.run(["bash", "-c", f"set -e; {local}"], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    assert '"ID":"web"' in outputs[2]
    assert outputs[3].endswith("hello")
    assert re.search(r"ANSWER SECTION:\nweb\.service\.consul\.\s+0\s+IN\s+SRV\s+1 1 8080 ", outputs[4])
