"""Docker checks against a real Engine-compatible daemon: podman's API service.

The fixture builds everything locally, since no image can be pulled: a one-file
image from Debian's static busybox, imported into a private podman store. podman
runs with runc (crun cannot drive this machine's hybrid cgroups) and explicit
ulimits (the sandbox forbids raising the defaults podman asks for). Any step that
fails skips the tests with podman's own words.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from checks_kit import Harness

from waypost.checks.definition import parse_check_definition
from waypost.checks.docker import DockerCheck

IMAGE = "localhost/waypost-check-busybox:latest"
CONTAINER = "waypost-check-target"


@dataclass
class Podman:
    base: list[str]
    socket: Path
    env: dict[str, str]

    def run(self, *args: str) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=120, env=self.env)
        if done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout.strip()


def _busybox_image(folder: Path) -> Path:
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("the image needs a static busybox (apt-get install busybox-static)")
    archive = folder / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        scratch = tarfile.TarInfo("tmp")
        scratch.type, scratch.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(scratch)
        tar.add(busybox, arcname="bin/busybox")
        for applet in ("sh", "sleep", "cat", "echo"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return archive


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no container engine: {', '.join(missing)} not installed (apt-get install podman runc)")
    folder = tmp_path_factory.mktemp("podman")
    # Each exec's record outlives it by this delay so it can be inspected; podman's five
    # minutes would leave a conmon per exec behind long after the tests.
    (folder / "containers.conf").write_text("[engine]\nexit_command_delay = 10\n")
    engine = Podman(
        [
            "podman", "--runtime", "runc", "--storage-driver", "vfs",
            "--root", str(folder / "root"), "--runroot", str(folder / "run"),
        ],
        folder / "api.sock",
        {**os.environ, "CONTAINERS_CONF": str(folder / "containers.conf")},
    )  # fmt: skip
    service = None
    try:
        engine.run("import", str(_busybox_image(folder)), IMAGE)
        engine.run(
            "run", "-d", "--name", CONTAINER, "--network", "none",
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
            IMAGE, "/bin/sleep", "3600",
        )  # fmt: skip
        service = subprocess.Popen(
            [*engine.base, "system", "service", "--time=0", f"unix://{engine.socket}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=engine.env,
        )
        for _ in range(200):
            if engine.socket.exists():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("podman system service did not open its socket")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        if service is not None:
            service.kill()
            service.wait()
        pytest.skip(f"no container engine could run here: {exc}")
    yield engine
    service.terminate()
    service.wait(timeout=30)
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
