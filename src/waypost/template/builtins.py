"""Go's text/template builtins (``eq``, ``index``, ``printf``, ``len``, ...), with Go's
comparison rules and error messages. ``and`` and ``or`` are registered here but evaluated
lazily by the executor, as Go does since 1.18."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Callable
from typing import Any

from waypost.template.errors import FuncError
from waypost.template.gofmt import NO_VALUE, StringMap, go_sprint, go_sprintf, go_sprintln, go_type

__all__ = ["BUILTINS", "LAZY", "is_true"]


def is_true(value: Any) -> bool:
    """Go's ``template.IsTrue``: zero values are false, structs always true."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, bool | int | float | str | list | tuple | dict):
        return bool(value)
    return True


def _basic(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return ""


def _eq(arg1: Any, *args: Any) -> bool:
    if not args:
        raise FuncError("missing argument for comparison")
    for arg in args:
        k1, k2 = _basic(arg1), _basic(arg)
        if k1 and k2:
            if k1 != k2:
                raise FuncError(f"incompatible types for comparison: {go_type(arg1)} and {go_type(arg)}")
            if arg1 == arg:
                return True
        elif arg1 is None or arg is None:
            if arg1 is arg:
                return True
        elif isinstance(arg1, list | dict) or isinstance(arg, list | dict):
            raise FuncError("non-comparable type")
        elif arg1 is arg or arg1 == arg:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    k1, k2 = _basic(a), _basic(b)
    if not k1 or not k2 or k1 == "bool" or k2 == "bool":
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _not(arg: Any) -> bool:
    return not is_true(arg)


def _len(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, list | tuple | dict):
        return len(item)
    raise FuncError(f"len of type {go_type(item)}")


def _index(item: Any, *indexes: Any) -> Any:
    for idx in indexes:
        if isinstance(item, dict):
            if not isinstance(idx, str):
                raise FuncError(f"value has type {go_type(idx)}; should be string")
            item = item.get(idx, "" if isinstance(item, StringMap) else None)
        elif isinstance(item, list | tuple | str):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise FuncError(f"cannot index slice/array with type {go_type(idx)}")
            if not 0 <= idx < len(item):
                raise FuncError(f"index out of range: {idx}")
            item = item[idx] if not isinstance(item, str) else item.encode()[idx]
        elif item is None:
            raise FuncError("index of untyped nil")
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *indexes: int) -> Any:
    if not isinstance(item, str | list | tuple):
        raise FuncError(f"can't slice item of type {go_type(item)}")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    bounds = list(indexes)
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise FuncError(
            f"invalid slice index: {start} > {end}" if start > end else f"index out of range: {end}"
        )
    return item[start:end]


def _html(*args: Any) -> str:
    return html.escape(go_sprint(list(args))).replace("&#x27;", "&#39;").replace("&quot;", "&#34;")


def _js(*args: Any) -> str:
    out = []
    for c in go_sprint(list(args)):
        if c in "\\'\"":
            out.append("\\" + c)
        elif c in "<>&=" or ord(c) < 0x20:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(go_sprint(list(args)))


def _call(fn: Any, *args: Any) -> Any:
    if not callable(fn):
        raise FuncError(f"non-function of type {go_type(fn)}")
    return fn(*args)


def _printf(fmt: str, *args: Any) -> str:
    return go_sprintf(fmt, list(args))


def _print(*args: Any) -> str:
    return go_sprint(list(args))


def _println(*args: Any) -> str:
    return go_sprintln(list(args))


def _lazy(*args: Any) -> Any:
    raise AssertionError("and/or are evaluated by the executor")


LAZY = frozenset(("and", "or"))

BUILTINS: dict[str, Callable[..., Any]] = {
    "and": _lazy,
    "or": _lazy,
    "call": _call,
    "eq": _eq,
    "ge": _ge,
    "gt": _gt,
    "html": _html,
    "index": _index,
    "js": _js,
    "le": _le,
    "len": _len,
    "lt": _lt,
    "ne": _ne,
    "not": _not,
    "print": _print,
    "printf": _printf,
    "println": _println,
    "slice": _slice,
    "urlquery": _urlquery,
}
