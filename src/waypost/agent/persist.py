"""Services and checks registered through the API survive an agent restart, as in Consul
(which keeps them under ``data_dir/services`` and ``data_dir/checks``).

Definitions are kept as the bodies clients sent, so a restart registers them through
the very same path; config-file definitions are not kept, the files are re-read.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["LocalDefinitions", "save_json"]

log = logging.getLogger("waypost.agent.persist")

FILE_NAME = "local-definitions.json"


def save_json(path: Path, value: object) -> None:
    """Write atomically (temp file, fsync, rename) so a crash never leaves half a file, and
    readable by this user only, as Consul keeps its agent state: it can hold tokens."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


class LocalDefinitions:
    def __init__(self, data_dir: str) -> None:
        self._path = Path(data_dir) / FILE_NAME if data_dir else None
        self.services: dict[str, Any] = {}
        self.checks: dict[str, Any] = {}

    def load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            saved = json.loads(self._path.read_text())
            self.services = dict(saved.get("services", {}))
            self.checks = dict(saved.get("checks", {}))
        except (OSError, ValueError, AttributeError) as exc:
            log.error("ignoring unreadable %s: %s", self._path, exc)

    def save(self) -> None:
        if self._path is not None:
            save_json(self._path, {"services": self.services, "checks": self.checks})

    def keep_service(self, service_id: str, body: Any) -> None:
        self.services[service_id] = body
        self.save()

    def keep_check(self, check_id: str, body: Any) -> None:
        self.checks[check_id] = body
        self.save()

    def forget_service(self, service_id: str, check_ids: list[str]) -> None:
        found = self.services.pop(service_id, None) is not None
        for cid in check_ids:
            found = self.checks.pop(cid, None) is not None or found
        if found:
            self.save()

    def forget_check(self, check_id: str) -> None:
        if self.checks.pop(check_id, None) is not None:
            self.save()
