"""Checking one configuration source against the schema and turning it into typed values.

Every source (the -dev defaults, each file, the flags, each -hcl snippet) is
decoded on its own, as Consul does, so that an error can name the file it is
in. The result is a *fragment*: nested dicts holding only the keys that source
set, already converted (durations parsed, ports normalised). ``merge`` then
layers fragments in Consul's order: later scalars win, lists are
concatenated, objects and maps are merged key by key.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, cast, get_args, get_origin, get_type_hints

from waypost.config.compat import IGNORED, RENAMED
from waypost.config.errors import ConfigError
from waypost.config.model import RUNTIME, AgentConfig, Duration

__all__ = ["Decoded", "Fragment", "build", "decode_source", "merge"]

_T = TypeVar("_T")

Fragment = dict[str, Any]

#: Top-level keys holding one definition that Consul appends to the plural list.
_SINGULAR = {"service": "services", "check": "checks"}


@dataclass
class Decoded:
    fragment: Fragment
    #: Key paths Consul knows that waypost accepted and ignored.
    ignored: list[str] = field(default_factory=list)


def decode_source(source: str, raw: Mapping[str, object]) -> Decoded:
    """Validate ``raw`` (parsed JSON or HCL, or flag values) and convert it to a fragment."""
    decoder = _Decoder(source)
    fragment = decoder.section(AgentConfig, raw, "")
    decoder.apply_renames(fragment)
    return Decoded(fragment, decoder.ignored)


def merge(base: Fragment, over: Fragment) -> Fragment:
    """Layer ``over`` on ``base`` in place with Consul's rules and return ``base``."""
    for key, value in over.items():
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merge(current, value)
        elif isinstance(value, tuple) and isinstance(current, tuple):
            base[key] = current + value
        else:
            base[key] = value
    return base


def _fields(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.metadata != RUNTIME}


def _is_ignored(path: str) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:i]) in IGNORED for i in range(1, len(parts) + 1))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(raw: object) -> str:
    if isinstance(raw, dict):
        return "an object"
    if isinstance(raw, list):
        return "a list"
    return json.dumps(raw)


class _Decoder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.ignored: list[str] = []
        self.renames: list[tuple[str, str, object]] = []

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {problem}", self.source)

    def expected(self, path: str, what: str, raw: object) -> ConfigError:
        return self.fail(path, f"expected {what}, got {_describe(raw)}")

    def as_object(self, raw: object, path: str) -> dict[str, object]:
        """An object, or the list of objects that repeated HCL blocks become, merged in order."""
        if isinstance(raw, dict):
            return raw
        if isinstance(raw, list) and all(isinstance(item, dict) for item in raw):
            merged: dict[str, object] = {}
            for item in raw:
                merged.update(item)
            return merged
        raise self.expected(path or "configuration", "an object", raw)

    def section(self, cls: type, raw: object, path: str) -> Fragment:
        hints = _fields(cls)
        out: Fragment = {}
        for key, value in self.as_object(raw, path).items():
            key_path = _join(path, str(key))
            if value is None:
                continue  # JSON/HCL null leaves the setting unset, like a nil pointer in Consul.
            if key in hints:
                merge(out, {key: self.value(hints[key], value, key_path)})
            elif not path and key in _SINGULAR:
                plural = _SINGULAR[key]
                element = get_args(hints[plural])[0]
                blocks = value if isinstance(value, list) else [value]
                merge(out, {plural: tuple(self.value(element, block, key_path) for block in blocks)})
            elif key_path in RENAMED:
                self.renames.append((key_path, RENAMED[key_path], value))
            elif _is_ignored(key_path):
                self.ignored.append(key_path)
            else:
                raise ConfigError(f"invalid config key {key_path}", self.source)
        return out

    def apply_renames(self, fragment: Fragment) -> None:
        for old, new, value in self.renames:
            *parents, leaf = new.split(".")
            target, cls = fragment, AgentConfig
            for name in parents:
                target = target.setdefault(name, {})
                cls = _fields(cls)[name]
            if leaf not in target:
                target[leaf] = self.value(_fields(cls)[leaf], value, old)

    def value(self, tp: Any, raw: object, path: str) -> Any:
        origin = get_origin(tp)
        if origin is Annotated:
            base, *checks = get_args(tp)
            result = self.value(base, raw, path)
            for check in checks:
                try:
                    result = cast(Callable[[object], object], check)(result)
                except ValueError as err:
                    raise self.fail(path, str(err)) from None
            return result
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            raise self.expected(path, "a boolean", raw)
        if tp is int:
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)  # Go's JSON decoder reads every number as a float, so 8500.0 is 8500.
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            raise self.expected(path, "an integer", raw)
        if tp is str:
            if isinstance(raw, str):
                return raw
            raise self.expected(path, "a string", raw)
        if tp is Duration:
            if not isinstance(raw, str):
                raise self.expected(path, 'a duration string such as "10s"', raw)
            try:
                return Duration(raw)
            except ValueError as err:
                raise self.fail(path, str(err)) from None
        if origin is tuple:
            element = get_args(tp)[0]
            items = [raw] if isinstance(raw, dict) else raw
            if not isinstance(items, list):
                raise self.expected(path, "a list", raw)
            return tuple(self.value(element, item, f"{path}[{i}]") for i, item in enumerate(items))
        if origin in (dict, Mapping):
            value_type = get_args(tp)[1]
            if value_type is Any:
                if isinstance(raw, dict):
                    return dict(raw)
                raise self.expected(path, "an object", raw)
            return {
                str(k): self.value(value_type, v, f"{path}.{k}") for k, v in self.as_object(raw, path).items()
            }
        if dataclasses.is_dataclass(tp):
            return self.section(cast(type, tp), raw, path)
        raise TypeError(f"schema type {tp!r} at {path} has no decoder")


def build(cls: type[_T], fragment: Fragment) -> _T:
    """The dataclass ``cls`` with the fragment's values and the schema defaults for the rest."""
    hints = _fields(cls)
    values = {
        name: build(hints[name], value)
        if isinstance(value, dict) and dataclasses.is_dataclass(hints[name])
        else value
        for name, value in fragment.items()
    }
    return cls(**values)
