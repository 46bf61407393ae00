"""Certificates for TLS tests, made by the real ``waypost tls`` commands in a directory.

Not a test module: agent, CLI and end-to-end tests share it. ``make_certs`` runs
``tls ca create`` and ``tls cert create -server/-client/-cli`` as an operator would, so
every TLS test also exercises the files those commands write.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Certs", "make_certs", "run_waypost"]


def run_waypost(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSUL_", "WAYPOST_"))}
    return subprocess.run(
        [sys.executable, "-m", "waypost", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


@dataclass(frozen=True)
class Certs:
    """One CA and a certificate pair of each kind, as ``waypost tls`` names them."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "consul-agent-ca.pem"

    def pair(self, kind: str, index: int = 0, dc: str = "dc1") -> tuple[Path, Path]:
        return self.dir / f"{dc}-{kind}-consul-{index}.pem", self.dir / f"{dc}-{kind}-consul-{index}-key.pem"

    def client_context(self, kind: str | None = "cli") -> ssl.SSLContext:
        """A client's context trusting this CA, presenting the ``kind`` pair (None: none)."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if kind is not None:
            cert, key = self.pair(kind)
            ctx.load_cert_chain(cert, key)
        return ctx

    def hcl(self, block: str, kind: str = "server", index: int = 0, dc: str = "dc1", **settings: bool) -> str:
        """A ``tls { <block> { ... } }`` snippet naming this CA and the ``kind`` pair."""
        cert, key = self.pair(kind, index, dc)
        lines = [f'ca_file = "{self.ca}"', f'cert_file = "{cert}"', f'key_file = "{key}"']
        lines += [f"{name} = {str(value).lower()}" for name, value in settings.items()]
        return f"tls {{ {block} {{ {' '.join(lines)} }} }}"


def make_certs(directory: Path) -> Certs:
    """A fresh CA with one server, client and cli certificate in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for args in (("ca", "create"), *(("cert", "create", f"-{kind}") for kind in ("server", "client", "cli"))):
        done = run_waypost(directory, "tls", *args)
        assert done.returncode == 0, done.stderr
    return Certs(directory)
