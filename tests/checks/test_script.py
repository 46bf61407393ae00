from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from checks_kit import Harness

from waypost.checks.definition import parse_check_definition
from waypost.checks.scheduler import CheckScheduler, ScriptChecksDisabledError
from waypost.checks.script import ScriptCheck

SCRIPT = """#!/bin/sh
cat "$1/message"
echo "on stderr" >&2
exit "$(cat "$1/code")"
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "check.sh"
    path.write_text(SCRIPT)
    path.chmod(0o755)
    (tmp_path / "code").write_text("0")
    (tmp_path / "message").write_text("fine\n")
    return path


def set_state(script: Path, code: int, message: str) -> None:
    (script.parent / "code").write_text(str(code))
    (script.parent / "message").write_text(message)


async def test_exit_codes_map_to_status(harness: Harness, script: Path) -> None:
    check = harness.add({"Args": [str(script), str(script.parent)], "Interval": "1s"})
    assert await harness.recorder.wait_for(check, "passing") == "fine\non stderr\n"

    set_state(script, 1, "degraded\n")
    assert await harness.recorder.wait_for(check, "warning") == "degraded\non stderr\n"

    set_state(script, 2, "down\n")
    assert await harness.recorder.wait_for(check, "critical") == "down\non stderr\n"

    set_state(script, 0, "back\n")
    assert await harness.recorder.wait_for(check, "passing") == "back\non stderr\n"


async def test_old_script_field_runs_in_a_shell() -> None:
    result = await ScriptCheck().probe(
        parse_check_definition({"Script": "echo hi; exit 3", "Interval": "1s"})
    )
    assert (result.status, result.output) == ("critical", "hi\n")


async def test_output_keeps_the_tail() -> None:
    body = {"Args": [sys.executable, "-c", "print('a' * 50 + 'END')"], "Interval": "1s", "OutputMaxSize": 10}
    result = await ScriptCheck().probe(parse_check_definition(body))
    assert result.output == "Captured 10 of 54 bytes\n...\naaaaaaEND\n"


async def test_missing_executable() -> None:
    result = await ScriptCheck().probe(parse_check_definition({"Args": ["/no/such/check"], "Interval": "1s"}))
    assert (result.status, result.output) == (
        "critical",
        'exec: "/no/such/check": executable file not found in $PATH',
    )


async def test_timeout_kills_the_whole_process_group(harness: Harness, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    command = f"sleep 300 & echo $! > {pid_file}; wait"
    check = harness.add({"Args": ["/bin/sh", "-c", command], "Interval": "1s", "Timeout": "2s"})
    assert await harness.recorder.wait_for(check, "critical") == "Timed out (2s) running check"
    child = int(pid_file.read_text())
    for _ in range(500):
        if not _alive(child):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail(f"child {child} of the timed-out script is still running")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return state != "Z"


async def test_refused_unless_scripts_are_allowed(script: Path) -> None:
    scheduler = CheckScheduler(_NullNotifier())
    with pytest.raises(ScriptChecksDisabledError) as caught:
        scheduler.add("s", parse_check_definition({"Args": [str(script)], "Interval": "1s"}))
    assert str(caught.value) == (
        "Scripts are disabled on this agent; to enable, configure "
        "'enable_script_checks' or 'enable_local_script_checks' to true"
    )
    with pytest.raises(ScriptChecksDisabledError):
        scheduler.add(
            "d", parse_check_definition({"Args": ["x"], "DockerContainerID": "c", "Interval": "1s"})
        )
    await scheduler.stop()


class _NullNotifier:
    def update_check(self, check_id: str, status: str, output: str) -> None:
        raise AssertionError("nothing should run")

    def deregister_critical_service(self, service_id: str) -> None:
        raise AssertionError("nothing should run")
