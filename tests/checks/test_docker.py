"""Docker checks against a real Engine-compatible daemon: podman's API service.

waypost.testing.podman builds the image and the private store; any step that fails skips the
tests with podman's own words.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from checks_kit import Harness

from waypost.checks.definition import parse_check_definition
from waypost.checks.docker import DockerCheck
from waypost.testing.podman import IMAGE, ULIMITS, Podman, start_podman

CONTAINER = "waypost-check-target"


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    try:
        engine = start_podman(tmp_path_factory.mktemp("podman"))
        engine.run(
            "run", "-d", "--name", CONTAINER, "--network", "none", *ULIMITS, IMAGE, "/bin/sleep", "3600"
        )
        engine.start_service()
    except RuntimeError as exc:
        pytest.skip(f"no container engine could run here: {exc}")
    yield engine
    engine.stop_service()
    subprocess.run(
        [*engine.base, "rm", "-f", "-t", "0", CONTAINER], capture_output=True, timeout=120, env=engine.env
    )


@pytest.fixture
async def docker_check(podman: Podman) -> AsyncIterator[DockerCheck]:
    check = DockerCheck(host=f"unix://{podman.socket}")
    yield check
    await check.close()


def set_exit(podman: Podman, code: int, message: str) -> None:
    podman.run(
        "exec", CONTAINER, "/bin/sh", "-c", f"echo {code} > /tmp/code; echo '{message}' > /tmp/message"
    )


async def test_exit_code_inside_the_container_drives_status(
    podman: Podman, docker_check: DockerCheck, make_harness: Callable[..., Harness]
) -> None:
    harness = make_harness(check_types={"docker": docker_check})
    await harness.scheduler.start()
    set_exit(podman, 0, "fine")
    check = harness.add(
        {
            "DockerContainerID": CONTAINER,
            "Shell": "/bin/sh",
            "Script": "cat /tmp/message; echo err >&2; exit $(cat /tmp/code)",
            "Interval": "1s",
        }
    )
    assert await harness.recorder.wait_for(check, "passing") == "fine\nerr\n"
    for code, status, message in (
        (1, "warning", "degraded"),
        (2, "critical", "down"),
        (0, "passing", "back"),
    ):
        # Count reports before the change: the check may report it before the thread returns.
        before = len(harness.recorder.history(check))
        await asyncio.to_thread(set_exit, podman, code, message)
        assert await harness.recorder.wait_for(check, status, since=before) == f"{message}\nerr\n"


async def test_args_run_without_a_shell(docker_check: DockerCheck) -> None:
    body = {"DockerContainerID": CONTAINER, "Args": ["/bin/echo", "hello"], "Interval": "1s"}
    result = await docker_check.probe(parse_check_definition(body))
    assert (result.status, result.output) == ("passing", "hello\n")


async def test_unknown_container(docker_check: DockerCheck) -> None:
    body = {"DockerContainerID": "no-such-container", "Args": ["/bin/true"], "Interval": "1s"}
    result = await docker_check.probe(parse_check_definition(body))
    assert (result.status, result.output) == (
        "critical",
        "create exec failed for unknown container no-such-container",
    )


async def test_unreachable_daemon(tmp_path: Path) -> None:
    check = DockerCheck(host=f"unix://{tmp_path}/absent.sock")
    try:
        result = await check.probe(
            parse_check_definition({"DockerContainerID": "c", "Args": ["x"], "Interval": "1s"})
        )
    finally:
        await check.close()
    assert result.status == "critical"
