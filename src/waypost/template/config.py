"""consul-template's configuration: the ``-template in:out:cmd`` flag, ``-wait min:max`` and
the HCL/JSON file (``template {...}``, ``exec {...}``, ``wait``, ``consul``, ``dedup``).

Every bad value is a ``ConfigError`` naming the setting, raised before anything runs.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

from waypost.config.errors import ConfigError
from waypost.config.sources import parse_text
from waypost.durations import parse_duration

__all__ = [
    "Config",
    "ConfigError",
    "ExecSpec",
    "TemplateSpec",
    "Wait",
    "apply_file",
    "parse_signal",
    "parse_template_flag",
    "parse_wait",
    "validate",
]


@dataclass(frozen=True, slots=True)
class Wait:
    """Quiescence: render ``min`` after the last change, but no later than ``max`` after the first."""

    min: float = 0.0
    max: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.min > 0


@dataclass(slots=True)
class TemplateSpec:
    source: str = ""
    contents: str = ""
    destination: str = ""
    command: list[str] = field(default_factory=list)
    command_timeout: float = 30.0
    perms: int | None = None
    backup: bool = False
    create_dest_dirs: bool = True
    error_on_missing_key: bool = False
    wait: Wait | None = None
    left_delimiter: str = "{{"
    right_delimiter: str = "}}"

    @property
    def name(self) -> str:
        """How logs and errors name the template: its file, or "(dynamic)" for ``contents``."""
        return self.source or "(dynamic)"


@dataclass(slots=True)
class ExecSpec:
    command: list[str] = field(default_factory=list)
    reload_signal: str = ""
    kill_signal: str = "SIGTERM"
    kill_timeout: float = 30.0


@dataclass(slots=True)
class Config:
    templates: list[TemplateSpec] = field(default_factory=list)
    address: str = ""
    token: str = ""
    ssl: bool = False
    wait: Wait = field(default_factory=Wait)
    once: bool = False
    dry: bool = False
    max_stale: float = 0.0
    block_query_wait: float = 60.0
    log_level: str = "warn"
    err_on_failed_lookup: bool = False
    dedup: bool = False
    dedup_prefix: str = "consul-template/dedup/"
    exec: ExecSpec | None = None


def parse_wait(text: str, setting: str = "wait") -> Wait:
    """``"5s"`` (max is 4 x min) or ``"2s:10s"``, as consul-template's ``ParseWaitConfig``."""
    parts = text.strip().split(":")
    try:
        if len(parts) == 1:
            low = parse_duration(parts[0].strip())
            return Wait(low, low * 4)
        if len(parts) == 2:
            low, high = parse_duration(parts[0].strip()), parse_duration(parts[1].strip())
            if high < low:
                raise ConfigError(f"{setting}: max must be larger than min")
            return Wait(low, high)
    except ValueError as err:
        raise ConfigError(f"{setting}: {err}") from None
    raise ConfigError(f"{setting}: invalid format: {text!r}")


def parse_template_flag(text: str) -> TemplateSpec:
    """``source[:destination[:command]]``; the command may itself contain colons."""
    if not text.strip():
        raise ConfigError("-template: cannot be empty")
    source, _, rest = text.partition(":")
    destination, _, command = rest.partition(":")
    return TemplateSpec(source=source, destination=destination, command=[command] if command else [])


def _duration(raw: Any, setting: str) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if not isinstance(raw, str):
        raise ConfigError(f"{setting}: expected a duration, got {raw!r}")
    try:
        return parse_duration(raw)
    except ValueError as err:
        raise ConfigError(f"{setting}: {err}") from None


def _bool(raw: Any, setting: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ConfigError(f"{setting}: expected a boolean, got {raw!r}")


def _string(raw: Any, setting: str) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{setting}: expected a string, got {raw!r}")
    return raw


def _command(raw: Any, setting: str) -> list[str]:
    if isinstance(raw, str):
        return [raw] if raw else []
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return list(raw)
    raise ConfigError(f"{setting}: expected a string or a list of strings, got {raw!r}")


def _perms(raw: Any) -> int:
    """``perms = 0600`` (HCL reads the digits as decimal 600), ``"0600"`` or ``0o600``."""
    text = str(raw).removeprefix("0o")
    try:
        value = int(text, 8)
    except ValueError:
        raise ConfigError(f"template.perms: invalid file mode {raw!r}") from None
    if not 0 <= value <= 0o7777:
        raise ConfigError(f"template.perms: invalid file mode {raw!r}")
    return value


def _blocks(raw: Any, setting: str) -> list[dict[str, Any]]:
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"{setting}: expected a block")
    return items


def _wait_block(raw: Any, setting: str) -> Wait:
    if isinstance(raw, str):
        return parse_wait(raw, setting)
    block = _blocks(raw, setting)[-1]
    low = _duration(block.get("min", "0s"), f"{setting}.min")
    high = _duration(block["max"], f"{setting}.max") if "max" in block else low * 4
    if high < low:
        raise ConfigError(f"{setting}: max must be larger than min")
    return Wait(low, high)


_TEMPLATE_KEYS = {
    "source", "contents", "destination", "command", "command_timeout", "perms", "backup",
    "create_dest_dirs", "error_on_missing_key", "wait", "exec", "left_delimiter", "right_delimiter",
}  # fmt: skip
_TOP_KEYS = {
    "template", "consul", "wait", "dedup", "deduplicate", "max_stale", "exec", "once", "log_level",
    "err_on_failed_lookup", "block_query_wait", "kill_signal", "reload_signal",
}  # fmt: skip


def _template(raw: dict[str, Any]) -> TemplateSpec:
    unknown = sorted(set(raw) - _TEMPLATE_KEYS)
    if unknown:
        raise ConfigError(f"template: unsupported setting {unknown[0]!r}")
    spec = TemplateSpec()
    spec.source = _string(raw.get("source", ""), "template.source")
    spec.contents = _string(raw.get("contents", ""), "template.contents")
    spec.destination = _string(raw.get("destination", ""), "template.destination")
    spec.command = _command(raw.get("command", []), "template.command")
    if "command_timeout" in raw:
        spec.command_timeout = _duration(raw["command_timeout"], "template.command_timeout")
    if "exec" in raw:
        block = _blocks(raw["exec"], "template.exec")[-1]
        spec.command = _command(block.get("command", []), "template.exec.command")
        if "timeout" in block:
            spec.command_timeout = _duration(block["timeout"], "template.exec.timeout")
    if "perms" in raw:
        spec.perms = _perms(raw["perms"])
    spec.backup = _bool(raw.get("backup", False), "template.backup")
    spec.create_dest_dirs = _bool(raw.get("create_dest_dirs", True), "template.create_dest_dirs")
    spec.error_on_missing_key = _bool(raw.get("error_on_missing_key", False), "template.error_on_missing_key")
    if "wait" in raw:
        spec.wait = _wait_block(raw["wait"], "template.wait")
    for side in ("left_delimiter", "right_delimiter"):
        if side in raw:
            value = _string(raw[side], f"template.{side}")
            if not value.strip():
                raise ConfigError(f"template.{side}: cannot be empty")
            setattr(spec, side, value)
    return spec


def apply_file(config: Config, path: str) -> None:
    """Merge one HCL or JSON file (by extension, HCL otherwise) into ``config``; a directory
    contributes its ``.hcl`` and ``.json`` files in name order, as consul-template's -config."""
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if name.endswith((".hcl", ".json")):
                apply_file(config, os.path.join(path, name))
        return
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise ConfigError(f"config: {path}: {err.strerror}") from None
    raw = parse_text(path, text, "json" if path.endswith(".json") else "hcl")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unsupported setting {unknown[0]!r}")
    for block in _blocks(raw.get("template", []), "template") if "template" in raw else []:
        config.templates.append(_template(block))
    if "consul" in raw:
        consul = _blocks(raw["consul"], "consul")[-1]
        config.address = _string(consul.get("address", config.address), "consul.address")
        config.token = _string(consul.get("token", config.token), "consul.token")
        ssl = consul.get("ssl")
        if ssl is not None:
            config.ssl = _bool(
                _blocks(ssl, "consul.ssl")[-1].get("enabled", True) if not isinstance(ssl, bool) else ssl,
                "consul.ssl.enabled",
            )
    if "wait" in raw:
        config.wait = _wait_block(raw["wait"], "wait")
    for key in ("dedup", "deduplicate"):
        if key in raw:
            block = _blocks(raw[key], key)[-1]
            config.dedup = _bool(block.get("enabled", True), f"{key}.enabled")
            config.dedup_prefix = _string(block.get("prefix", config.dedup_prefix), f"{key}.prefix")
    if "max_stale" in raw:
        config.max_stale = _duration(raw["max_stale"], "max_stale")
    if "block_query_wait" in raw:
        config.block_query_wait = _duration(raw["block_query_wait"], "block_query_wait")
    if "once" in raw:
        config.once = _bool(raw["once"], "once")
    if "log_level" in raw:
        config.log_level = _string(raw["log_level"], "log_level")
    if "err_on_failed_lookup" in raw:
        config.err_on_failed_lookup = _bool(raw["err_on_failed_lookup"], "err_on_failed_lookup")
    if "exec" in raw:
        block = _blocks(raw["exec"], "exec")[-1]
        spec = config.exec or ExecSpec()
        spec.command = _command(block.get("command", spec.command), "exec.command")
        spec.reload_signal = _string(block.get("reload_signal", spec.reload_signal), "exec.reload_signal")
        spec.kill_signal = _string(block.get("kill_signal", spec.kill_signal), "exec.kill_signal")
        if "kill_timeout" in block:
            spec.kill_timeout = _duration(block["kill_timeout"], "exec.kill_timeout")
        config.exec = spec


def parse_signal(name: str) -> signal.Signals:
    """``SIGHUP``, ``HUP`` or ``hup``; ConfigError for anything else."""
    upper = name.upper()
    try:
        return signal.Signals[upper if upper.startswith("SIG") else "SIG" + upper]
    except KeyError:
        raise ConfigError(f"unknown signal {name!r}") from None


def validate(config: Config) -> None:
    """Cross-setting checks consul-template makes before starting."""
    if config.exec is not None:
        for sig in (config.exec.reload_signal, config.exec.kill_signal):
            if sig:
                parse_signal(sig)
    if not config.templates:
        raise ConfigError("At least one template must be specified (-template or a template block)")
    for spec in config.templates:
        if spec.source and spec.contents:
            raise ConfigError("template: source and contents are mutually exclusive")
        if not spec.source and not spec.contents:
            raise ConfigError("template: must specify exactly one of source or contents")
        if not spec.destination and not config.dry:
            raise ConfigError(f"template {spec.name}: missing destination")
        if spec.source and not os.path.isfile(spec.source):
            raise ConfigError(f"template {spec.name}: source does not exist")
