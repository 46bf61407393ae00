"""consul-template's functions over lists of services and key pairs: grouping (``byKey``,
``byTag``, ``byMeta``), nesting (``explode``) and membership (``in``, ``contains*``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from waypost.gostrconv import num_error
from waypost.template.errors import FuncError
from waypost.template.gofmt import go_str, go_type
from waypost.template.values import HealthService, KeyPair

__all__ = ["by_key", "by_meta", "by_tag", "contains", "contains_some", "explode", "is_in"]


def by_key(pairs: list[KeyPair]) -> dict[str, dict[str, KeyPair]]:
    out: dict[str, dict[str, KeyPair]] = {}
    for pair in pairs or []:
        top, _, rest = pair.Key.partition("/")
        if not rest:
            continue
        out.setdefault(top, {})[rest] = KeyPair(
            pair.Path,
            rest,
            pair.Value,
            pair.CreateIndex,
            pair.ModifyIndex,
            pair.LockIndex,
            pair.Flags,
            pair.Session,
        )
    return out


def by_tag(items: Any) -> dict[str, list[Any]]:
    if items is None:
        return {}
    if not isinstance(items, list) or not all(hasattr(i, "Tags") for i in items):
        raise FuncError(f"byTag: wrong argument type {go_type(items)}")
    out: dict[str, list[Any]] = {}
    for item in items:
        for tag in item.Tags:
            out.setdefault(tag, []).append(item)
    return out


def by_meta(meta: str, services: list[HealthService]) -> dict[str, list[HealthService]]:
    def value_of(m: dict[str, str], key: str) -> str:
        real = key.removesuffix("|int")
        if m.get(real):
            return m[real]
        return "0" if key.endswith("|int") else f"_no_{real}_"

    groups: dict[str, list[HealthService]] = {}
    for svc in services or []:
        parts = []
        for key in meta.split(","):
            value = value_of(svc.ServiceMeta, key)
            if key.endswith("|int"):
                try:
                    value = f"{int(value, 10):05d}"
                except ValueError:
                    raise FuncError(f"cannot parse {value} as number : {num_error('Atoi', value)}") from None
            parts.append(re.sub(r"[^a-zA-Z0-9_-]", "_", value))
        groups.setdefault("_".join(parts), []).append(svc)
    return groups


def is_in(container: Any, value: Any) -> bool:
    if isinstance(container, str):
        return isinstance(value, str) and value in container
    if isinstance(container, list | tuple):
        for item in container:
            if isinstance(item, bool) or isinstance(value, bool):
                continue
            if isinstance(item, int) and isinstance(value, int) and item == value:
                return True
            if isinstance(item, float) and isinstance(value, float) and item == value:
                return True
            if isinstance(item, str) and isinstance(value, str) and item == value:
                return True
    return False


def contains(value: Any, container: Any) -> bool:
    return is_in(container, value)


def contains_some(ret_true: bool, invert: bool) -> Callable[[list[Any], Any], bool]:
    def check(values: list[Any], container: Any) -> bool:
        for v in values or []:
            if is_in(container, v) != invert:
                return not ret_true
        return ret_true

    return check


def explode(pairs: list[KeyPair]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        node = out
        parts = pair.Key.split("/")
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = "/".join(parts[i:])
                raise FuncError(
                    f'explode: not a map: "{where}": "{part}" already has value "{go_str(child)}"'
                )
            node = child
        if parts[-1]:
            node[parts[-1]] = pair.Value
    return out
