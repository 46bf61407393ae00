"""What one ``waypost run`` keeps registered, checked once before anything starts.

Every mistake a command line can hold is caught here, before the child is started:
finding a typo after the service is up would mean either running it unregistered or
killing it again.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from waypost.durations import format_duration

__all__ = ["CheckMode", "Spec", "SpecError", "split_names"]

DEFAULT_TTL = 10.0


class SpecError(ValueError):
    """A command line that cannot be run; ``str`` is the message for the user."""


class CheckMode(Enum):
    """How the sidekick decides the TTL check's status before each heartbeat."""

    PROCESS = "process"
    """Passing while the child runs: the TTL lapses only if the sidekick itself dies."""
    TCP = "tcp"
    HTTP = "http"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_META_KEY = re.compile(r"^[a-zA-Z0-9_-]+$")
_META_PAIRS, _META_KEY_MAX, _META_VALUE_MAX = 64, 128, 512


def _check_meta(meta: dict[str, str]) -> None:
    """Consul's rules for service metadata, so the agent does not refuse what has started."""
    if len(meta) > _META_PAIRS:
        raise SpecError(f"-meta: no more than {_META_PAIRS} key/value pairs")
    for key, value in meta.items():
        problem = ""
        if not key:
            problem = "Key cannot be blank"
        elif not _META_KEY.match(key):
            problem = "Key contains invalid characters"
        elif len(key) > _META_KEY_MAX:
            problem = f"Key is too long (limit: {_META_KEY_MAX} characters)"
        elif key.startswith("consul-"):
            problem = "Key prefix 'consul-' is reserved for internal use"
        elif len(value) > _META_VALUE_MAX:
            problem = f"Value is too long (limit: {_META_VALUE_MAX} characters)"
        if problem:
            raise SpecError(f"-meta: Couldn't load metadata pair ('{key}', '{value}'): {problem}")


def split_names(values: list[str]) -> list[str]:
    """``-env-from web,db -env-from cache``: one list, in order, without repeats."""
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                raise SpecError(f"-env-from: empty service name in {value!r}")
            if name not in names:
                names.append(name)
    return names


@dataclass(frozen=True)
class Spec:
    service: str
    port: int
    command: list[str]
    service_id: str = ""
    address: str = ""
    tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    mode: CheckMode = CheckMode.PROCESS
    http_path: str = ""
    ttl: float = DEFAULT_TTL
    interval: float = 0.0
    no_wait: bool = False
    listen_timeout: float = 60.0
    env_from: list[str] = field(default_factory=list)
    deregister_after: float = 0.0
    """Consul's DeregisterCriticalServiceAfter: lets the agent reap what a killed sidekick leaves."""

    def __post_init__(self) -> None:
        if not self.service:
            raise SpecError("Missing service name: -service is required")
        if not _NAME.match(self.service):
            raise SpecError(f"Invalid service name {self.service!r}: letters, digits, '.', '_' and '-' only")
        if self.service_id and not _NAME.match(self.service_id):
            raise SpecError(f"Invalid -id {self.service_id!r}: letters, digits, '.', '_' and '-' only")
        if not 1 <= self.port <= 65535:
            raise SpecError(f"Invalid -port {self.port}: must be between 1 and 65535")
        if not self.command:
            raise SpecError("Missing command: waypost run [options] -- COMMAND [ARGS...]")
        if self.ttl <= 0:
            raise SpecError("-check-ttl must be positive")
        if self.interval < 0:
            raise SpecError("-check-interval must not be negative")
        if self.interval >= self.ttl:
            raise SpecError(
                "-check-interval must be shorter than -check-ttl, or the check lapses between beats"
            )
        if self.deregister_after < 0:
            raise SpecError("-check-deregister-after must not be negative")
        if self.listen_timeout <= 0:
            raise SpecError("-listen-timeout must be positive")
        if self.mode is CheckMode.HTTP:
            parsed = urllib.parse.urlsplit(self.probe_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise SpecError(
                    f"Invalid -check-http {self.http_path!r}: a path such as /health or an http(s) URL"
                )
        _check_meta(self.meta)

    @property
    def id(self) -> str:
        """The service ID: one wrapped process per port on a host, so the port keeps IDs apart."""
        return self.service_id or f"{self.service}-{self.port}"

    @property
    def check_id(self) -> str:
        """Consul's ID for a check registered with its service."""
        return f"service:{self.id}"

    @property
    def heartbeat(self) -> float:
        """Seconds between heartbeats (and probes): three tries before the TTL lapses."""
        return self.interval or self.ttl / 3

    @property
    def probe_url(self) -> str:
        if "://" in self.http_path:
            return self.http_path
        path = self.http_path if self.http_path.startswith("/") else "/" + self.http_path
        return f"http://127.0.0.1:{self.port}{path}"

    def registration(self, status: str) -> dict[str, Any]:
        """The body for ``/v1/agent/service/register``; the check starts in ``status`` so that a
        service registered after its first probe is not briefly critical."""
        body: dict[str, Any] = {"ID": self.id, "Name": self.service, "Port": self.port}
        if self.address:
            body["Address"] = self.address
        if self.tags:
            body["Tags"] = list(self.tags)
        if self.meta:
            body["Meta"] = dict(self.meta)
        body["Check"] = {
            "CheckID": self.check_id,
            "Name": f"Service '{self.service}' check",
            "TTL": format_duration(self.ttl),
            "Notes": self.notes,
            "Status": status,
        }
        if self.deregister_after:
            body["Check"]["DeregisterCriticalServiceAfter"] = format_duration(self.deregister_after)
        return body

    @property
    def notes(self) -> str:
        what = {
            CheckMode.PROCESS: "while the process runs",
            CheckMode.TCP: f"while 127.0.0.1:{self.port} accepts connections",
            CheckMode.HTTP: f"while {self.probe_url} answers",
        }[self.mode]
        return f"Kept passing by waypost run {what}"
