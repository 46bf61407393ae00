"""consul-template's math functions: ``{{ 10 | subtract 2 }}`` is 8 (the piped value is the
last argument), integers stay integers (Go's truncating division), and the error messages
are consul-template's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from waypost.gostrconv import go_quote
from waypost.template.errors import FuncError
from waypost.template.gofmt import go_str, go_type

__all__ = ["ARITH"]


def _number(name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FuncError(f"{name}: unknown type for {_go_q(value)} ({go_type(value)})")
    return value


def _go_q(value: Any) -> str:
    """``%q`` of a reflect.Value, as consul-template's math errors print their operands."""
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, float):
        return f"%!q(float64={go_str(value)})"
    return go_str(value)


def _arith(name: str, op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def fn(b: Any, a: Any) -> Any:
        x, y = _number(name, a), _number(name, b)
        if name == "modulo" and (isinstance(x, float) or isinstance(y, float)):
            raise FuncError(f"modulo: unknown type for {_go_q(b if isinstance(y, float) else a)} (float64)")
        if name in ("divide", "modulo") and y == 0 and isinstance(x, int) and isinstance(y, int):
            raise FuncError("runtime error: integer divide by zero")
        if name == "divide" and y == 0:
            return float("inf") if x > 0 else float("-inf") if x < 0 else float("nan")
        return op(x, y)

    return fn


def _go_div(x: Any, y: Any) -> Any:
    if isinstance(x, int) and isinstance(y, int):
        q = abs(x) // abs(y)
        return q if (x >= 0) == (y >= 0) else -q
    return x / y


def _go_mod(x: int, y: int) -> int:
    return x - y * int(_go_div(x, y))


def _minmax(name: str, pick_min: bool) -> Callable[[Any, Any], Any]:
    def fn(b: Any, a: Any) -> Any:
        x, y = _number(name, a), _number(name, b)
        if isinstance(x, float) or isinstance(y, float):
            x, y = float(x), float(y)
        return (x if x < y else y) if pick_min else (x if x > y else y)

    return fn


ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "add": _arith("add", lambda x, y: x + y),
    "subtract": _arith("subtract", lambda x, y: x - y),
    "multiply": _arith("multiply", lambda x, y: x * y),
    "divide": _arith("divide", _go_div),
    "modulo": _arith("modulo", _go_mod),
    "minimum": _minmax("minimum", True),
    "maximum": _minmax("maximum", False),
}
