"""A real Engine-compatible daemon for tests and benchmarks: podman's API service over a
private store.

No image can be pulled here, so the image is built locally: one file system from
Debian's static busybox, imported into a podman store under a throwaway folder.
podman runs with runc (crun cannot drive this machine's hybrid cgroups), the vfs
driver, and explicit ulimits (the sandbox forbids raising the defaults podman asks
for). Any step that fails raises RuntimeError with podman's own words, which the
fixtures turn into a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["IMAGE", "ULIMITS", "Podman", "busybox_image", "start_podman"]

IMAGE = "localhost/waypost-check-busybox:latest"
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
_APPLETS = ("sh", "sleep", "cat", "echo", "rm", "touch", "true", "false", "nc", "httpd")


@dataclass
class Podman:
    base: list[str]
    socket: Path
    env: dict[str, str]
    service: subprocess.Popen[bytes] | None = field(default=None)

    def run(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=timeout, env=self.env
        )
        if done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout.strip()

    def start_service(self) -> None:
        """Serve the Docker-compatible API on ``socket`` until ``stop_service``."""
        self.socket.unlink(missing_ok=True)
        self.service = subprocess.Popen(
            [*self.base, "system", "service", "--time=0", f"unix://{self.socket}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        for _ in range(200):
            if self.socket.exists():
                return
            if self.service.poll() is not None:
                break
            time.sleep(0.05)
        self.stop_service()
        raise RuntimeError("podman system service did not open its socket")

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.terminate()
            try:
                self.service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
            self.service = None


def busybox_image(folder: Path) -> Path:
    """A root file system tarball: static busybox and the applets tests use."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("the image needs a static busybox (apt-get install busybox-static)")
    archive = folder / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        scratch = tarfile.TarInfo("tmp")
        scratch.type, scratch.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(scratch)
        tar.add(busybox, arcname="bin/busybox")
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return archive


def start_podman(folder: Path) -> Podman:
    """A private podman store under ``folder`` with IMAGE imported (no API service yet)."""
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not installed (apt-get install podman runc)")
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
    try:
        engine.run("import", str(busybox_image(folder)), IMAGE)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(str(exc)) from None
    return engine
