"""A check as registered: parsed once from whatever spelling the caller used.

Consul takes the same check from three dialects: the HTTP API's PascalCase, config files'
snake_case, and py-consul's mixture of both. Keys are therefore matched after dropping
case and underscores, which maps ``DeregisterCriticalServiceAfter`` and
``deregister_critical_service_after`` to one field without a table of aliases.
Validation mirrors ``structs.CheckType.Validate`` so the same bodies are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from waypost.durations import format_duration, parse_duration

__all__ = ["CheckDefinition", "CheckDefinitionError", "parse_check_definition"]

_VALID_STATUSES = ("passing", "warning", "critical")


class CheckDefinitionError(ValueError):
    """A registration Consul would refuse; ``field`` is the offending key in PascalCase."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"Invalid check: {field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckDefinition:
    """Durations are seconds (0 = unset); every other field keeps Consul's meaning."""

    check_id: str = ""
    name: str = ""
    service_id: str = ""
    status: str = ""
    notes: str = ""
    args: tuple[str, ...] = ()
    script: str = ""
    http: str = ""
    method: str = ""
    header: dict[str, tuple[str, ...]] = field(default_factory=dict)
    body: str = ""
    tls_skip_verify: bool = False
    tls_server_name: str = ""
    disable_redirects: bool = False
    tcp: str = ""
    tcp_use_tls: bool = False
    udp: str = ""
    ttl: float = 0.0
    grpc: str = ""
    grpc_use_tls: bool = False
    h2ping: str = ""
    h2ping_use_tls: bool = True
    docker_container_id: str = ""
    shell: str = ""
    alias_node: str = ""
    alias_service: str = ""
    os_service: str = ""
    interval: float = 0.0
    timeout: float = 0.0
    success_before_passing: int = 0
    failures_before_warning: int = 0
    failures_before_critical: int = 0
    deregister_critical_service_after: float = 0.0
    output_max_size: int = 0

    @property
    def kind(self) -> str:
        """Consul's ``Type`` for the HealthCheck record: "http", "ttl", "docker", ..."""
        present = self._kinds_present()
        return present[0][0] if present else ""

    @property
    def command(self) -> tuple[str, ...]:
        """What a script or docker check runs: Args, or the old ``Script`` via a shell."""
        if self.args:
            return self.args
        return (self.shell or "/bin/sh", "-c", self.script)

    def _kinds_present(self) -> list[tuple[str, str]]:
        scripted = bool(self.args or self.script)
        candidates = [
            ("grpc", "GRPC", bool(self.grpc)),
            ("http", "HTTP", bool(self.http)),
            ("ttl", "TTL", self.ttl > 0),
            ("tcp", "TCP", bool(self.tcp)),
            ("udp", "UDP", bool(self.udp)),
            ("alias", "AliasService" if self.alias_service else "AliasNode", self._is_alias),
            ("docker", "DockerContainerID", scripted and bool(self.docker_container_id)),
            ("script", "Args", scripted and not self.docker_container_id),
            ("h2ping", "H2PING", bool(self.h2ping)),
            ("os_service", "OSService", bool(self.os_service)),
        ]
        return [(kind, key) for kind, key, on in candidates if on]

    @property
    def _is_alias(self) -> bool:
        return bool(self.alias_node or self.alias_service)

    def to_definition_dict(self) -> dict[str, Any]:
        """Consul's ``HealthCheckDefinition`` JSON: empty fields omitted, durations as text.

        TTL stays integer nanoseconds because Consul's custom marshaller forgets it.
        """
        out: dict[str, Any] = {
            "HTTP": self.http,
            "TLSServerName": self.tls_server_name,
            "TLSSkipVerify": self.tls_skip_verify,
            "Header": {k: list(v) for k, v in self.header.items()},
            "Method": self.method,
            "Body": self.body,
            "DisableRedirects": self.disable_redirects,
            "TCP": self.tcp,
            "TCPUseTLS": self.tcp_use_tls,
            "UDP": self.udp,
            "H2PING": self.h2ping,
            "OSService": self.os_service,
            "H2PingUseTLS": self.h2ping_use_tls and bool(self.h2ping),
            "Interval": format_duration(self.interval) if self.interval else "",
            "OutputMaxSize": self.output_max_size,
            "Timeout": format_duration(self.timeout) if self.timeout else "",
            "DeregisterCriticalServiceAfter": (
                format_duration(self.deregister_critical_service_after)
                if self.deregister_critical_service_after
                else ""
            ),
            "ScriptArgs": list(self.args),
            "DockerContainerID": self.docker_container_id,
            "Shell": self.shell,
            "GRPC": self.grpc,
            "GRPCUseTLS": self.grpc_use_tls,
            "AliasNode": self.alias_node,
            "AliasService": self.alias_service,
            "TTL": round(self.ttl * 1e9),
        }
        return {k: v for k, v in out.items() if v}

    def validate(self) -> None:
        """Raise :class:`CheckDefinitionError` for what Consul's Validate refuses."""
        if self.status and self.status not in _VALID_STATUSES:
            raise CheckDefinitionError("Status", "Bad check status")
        if self.interval > 0 and self.ttl > 0:
            raise CheckDefinitionError("TTL", "Interval and TTL cannot both be specified")
        present = self._kinds_present()
        interval_check = any(kind not in ("ttl", "alias") for kind, _ in present)
        if interval_check and self.interval <= 0:
            raise CheckDefinitionError(
                "Interval", "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"
            )
        if interval_check and self._is_alias:
            raise CheckDefinitionError("Interval", "Interval cannot be set for Alias checks")
        if self._is_alias and self.ttl > 0:
            raise CheckDefinitionError("TTL", "TTL must be not be set for Alias checks")
        if not interval_check and not self._is_alias and self.ttl <= 0:
            raise CheckDefinitionError("TTL", "TTL must be > 0 for TTL checks")
        if len(present) > 1:
            (first, _), (_, key) = present[0], present[1]
            raise CheckDefinitionError(key, f"only one check type may be set, {first} is already")
        if self.output_max_size < 0:
            raise CheckDefinitionError("OutputMaxSize", "MaxOutputMaxSize must be positive")
        if self.failures_before_warning > self.failures_before_critical:
            raise CheckDefinitionError(
                "FailuresBeforeWarning", "FailuresBeforeWarning can't be higher than FailuresBeforeCritical"
            )


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise CheckDefinitionError(key, f"expected a string, got {type(value).__name__}")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise CheckDefinitionError(key, f"expected a boolean, got {type(value).__name__}")
    return value


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckDefinitionError(key, f"expected an integer, got {type(value).__name__}")
    if not -(2**31) <= value < 2**31:
        raise CheckDefinitionError(key, f"{value} is out of range for an int")
    return value


def _duration(key: str, value: Any) -> float:
    """Go strings ("10s") or JSON numbers, which Consul reads as nanoseconds."""
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise CheckDefinitionError(key, str(exc)) from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise CheckDefinitionError(key, f"{value} nanoseconds overflows a duration")
        return float(value) / 1e9
    raise CheckDefinitionError(key, f"expected a duration, got {type(value).__name__}")


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise CheckDefinitionError(key, "expected a list of strings")
    return tuple(value)


def _header(key: str, value: Any) -> dict[str, tuple[str, ...]]:
    """Consul's ``map[string][]string``; a lone string is taken as a one-item list."""
    if not isinstance(value, Mapping):
        raise CheckDefinitionError(key, "expected an object of header lists")
    return {
        str(name): (values,) if isinstance(values, str) else _strings(f"{key}.{name}", values)
        for name, values in value.items()
    }


_Converter = Callable[[str, Any], Any]


def _spec() -> dict[str, tuple[str, str, _Converter]]:
    """Field, PascalCase key (for errors) and converter, by key with case and "_" dropped."""
    table: list[tuple[str, str, _Converter, tuple[str, ...]]] = [
        ("check_id", "CheckID", _text, ("id",)),
        ("name", "Name", _text, ()),
        ("service_id", "ServiceID", _text, ()),
        ("status", "Status", _text, ()),
        ("notes", "Notes", _text, ()),
        ("args", "Args", _strings, ("scriptargs",)),
        ("script", "Script", _text, ()),
        ("http", "HTTP", _text, ()),
        ("method", "Method", _text, ()),
        ("header", "Header", _header, ()),
        ("body", "Body", _text, ()),
        ("tls_skip_verify", "TLSSkipVerify", _flag, ()),
        ("tls_server_name", "TLSServerName", _text, ()),
        ("disable_redirects", "DisableRedirects", _flag, ()),
        ("tcp", "TCP", _text, ()),
        ("tcp_use_tls", "TCPUseTLS", _flag, ()),
        ("udp", "UDP", _text, ()),
        ("ttl", "TTL", _duration, ()),
        ("grpc", "GRPC", _text, ()),
        ("grpc_use_tls", "GRPCUseTLS", _flag, ()),
        ("h2ping", "H2PING", _text, ()),
        ("h2ping_use_tls", "H2PingUseTLS", _flag, ()),
        ("docker_container_id", "DockerContainerID", _text, ()),
        ("shell", "Shell", _text, ()),
        ("alias_node", "AliasNode", _text, ()),
        ("alias_service", "AliasService", _text, ()),
        ("os_service", "OSService", _text, ()),
        ("interval", "Interval", _duration, ()),
        ("timeout", "Timeout", _duration, ()),
        ("success_before_passing", "SuccessBeforePassing", _count, ()),
        ("failures_before_warning", "FailuresBeforeWarning", _count, ()),
        ("failures_before_critical", "FailuresBeforeCritical", _count, ()),
        ("deregister_critical_service_after", "DeregisterCriticalServiceAfter", _duration, ()),
        ("output_max_size", "OutputMaxSize", _count, ()),
    ]
    return {alias: (name, key, conv) for name, key, conv, extra in table for alias in (key.lower(), *extra)}


_SPEC = _spec()


def parse_check_definition(body: Mapping[str, Any]) -> CheckDefinition:
    """Parse and validate one check body; unknown keys (e.g. echoed ``Type``) are ignored.

    ``null`` values count as absent, as Go's decoder treats them.
    """
    values: dict[str, Any] = {}
    for raw_key, raw_value in body.items():
        spec = _SPEC.get(str(raw_key).replace("_", "").lower())
        if spec is None or raw_value is None:
            continue
        name, key, convert = spec
        values[name] = convert(key, raw_value)
    definition = CheckDefinition(**values)
    definition.validate()
    return definition
