"""Go's ``fmt`` and ``encoding/json`` spellings of template values.

A rendered file must be byte-for-byte what consul-template writes, so a float prints as
Go's ``%v`` does (``1e+06``, ``0.5``), a map as ``map[a:1 b:2]`` with sorted keys, a
missing map entry as ``<no value>``, and ``toJSON`` escapes ``<``, ``>`` and ``&`` as Go's
encoder does.
"""

from __future__ import annotations

import dataclasses
import math
import re
from decimal import Decimal
from typing import Any

from waypost.gostrconv import go_quote

__all__ = [
    "NO_VALUE",
    "StringMap",
    "go_float",
    "go_json",
    "go_sprint",
    "go_sprintf",
    "go_sprintln",
    "go_str",
    "go_type",
]


class _NoValue:
    """Go's invalid reflect.Value: what a missing ``map[string]interface{}`` entry yields."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()


class StringMap(dict[str, Any]):
    """A Go ``map[string]string``: a missing key reads as "". ``nil`` marks a nil map,
    which prints as ``map[]`` but encodes as JSON ``null``."""

    GO_TYPE = "map[string]string"

    def __init__(self, *args: Any, nil: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.nil = nil


def _digits(f: float) -> tuple[str, int]:
    """The shortest round-tripping digits of abs(f) and the decimal point's position."""
    _, digits, exponent = Decimal(repr(abs(f))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    point = len(digits) + exponent
    return text, point


def go_float(f: float, fmt: str = "g", prec: int = -1) -> str:
    """``strconv.FormatFloat(f, fmt, prec, 64)`` for the 'g', 'e' and 'f' formats."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if fmt == "f" and prec >= 0:
        return sign + f"{abs(f):.{prec}f}"
    if prec >= 0:
        text = f"{abs(f):.{prec}{fmt}}"
        return sign + re.sub(r"e([+-])(\d)$", r"e\g<1>0\2", text)
    if f == 0:
        return sign + ("0e+00" if fmt == "e" else "0")
    digits, point = _digits(f)
    exp = point - 1
    if fmt == "e" or (fmt == "g" and (exp < -4 or exp >= 6)):
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_type(value: Any) -> str:
    """The Go type a value stands for, as ``%T`` and error messages name it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    name = getattr(type(value), "GO_TYPE", None)
    if isinstance(name, str):
        return name
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return type(value).__name__


def go_str(value: Any, depth: int = 0, indirect: bool = False) -> str:
    """``fmt.Sprint(value)`` for one value (the ``%v`` verb); ``indirect`` prints a pointer
    to a struct as the struct, as a template action does."""
    if value is NO_VALUE:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        inner = " ".join(f"{go_str(k, depth + 1)}:{go_str(value[k], depth + 1)}" for k in _sorted_keys(value))
        return f"map[{inner}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v, depth + 1) for v in value) + "]"
    if dataclasses.is_dataclass(value):
        pointer = go_type(value).startswith("*") and not indirect
        if pointer and depth > 0:
            return "0x" + format(id(value), "x")
        fields = " ".join(go_str(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
        return ("&" if pointer else "") + "{" + fields + "}"
    return str(value)


def _sorted_keys(m: dict[Any, Any]) -> list[Any]:
    try:
        return sorted(m)
    except TypeError:
        return sorted(m, key=str)


def go_sprint(args: list[Any]) -> str:
    """``fmt.Sprint``: a space between operands when neither side is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(arg))
    return "".join(out)


def go_sprintln(args: list[Any]) -> str:
    return " ".join(go_str(a) for a in args) + "\n"


_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d+)?)?([a-zA-Z%])")


def go_sprintf(fmt: str, args: list[Any]) -> str:
    """``fmt.Sprintf`` for the verbs templates use; Go's %!verb(...) markers otherwise."""
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if m.group(0).endswith(".") or (prec is None and "." in m.group(0)):
            prec = "0"
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        text = _format_one(verb, arg, flags, int(prec) if prec and prec != "*" else None)
        if width and width != "*":
            w = int(width)
            if "-" in flags:
                text = text.ljust(w)
            elif "0" in flags and verb in "dfegxXob" and not isinstance(arg, str):
                neg = text.startswith("-")
                text = ("-" if neg else "") + text.lstrip("-").rjust(w - neg, "0")
            else:
                text = text.rjust(w)
        out.append(text)
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{go_type(a)}={go_str(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _bad(verb: str, arg: Any) -> str:
    return f"%!{verb}({go_type(arg)}={go_str(arg)})"


def _format_one(verb: str, arg: Any, flags: str, prec: int | None) -> str:
    if verb == "v":
        return go_str(arg)
    if verb != "T" and isinstance(arg, list | tuple):
        return "[" + " ".join(_format_one(verb, a, flags, prec) for a in arg) + "]"
    if verb != "T" and isinstance(arg, dict):
        pairs = (
            f"{_format_one(verb, k, flags, prec)}:{_format_one(verb, arg[k], flags, prec)}"
            for k in _sorted_keys(arg)
        )
        return "map[" + " ".join(pairs) + "]"
    if arg is None and verb not in "vT":
        return f"%!{verb}(<nil>)"
    if verb == "U":
        return f"U+{arg:04X}" if isinstance(arg, int) and not isinstance(arg, bool) else _bad(verb, arg)
    if verb in "vs":
        if verb == "s" and isinstance(arg, bool | int | float) and not isinstance(arg, str):
            return _bad(verb, arg)
        text = go_str(arg)
        return text[:prec] if verb == "s" and prec is not None else text
    if verb == "T":
        return go_type(arg)
    if verb == "q":
        if isinstance(arg, str):
            return go_quote(arg)
        if isinstance(arg, int) and not isinstance(arg, bool):
            return "'" + chr(arg) + "'"
        return _bad(verb, arg)
    if verb == "t":
        return ("true" if arg else "false") if isinstance(arg, bool) else _bad(verb, arg)
    if verb == "c":
        return chr(arg) if isinstance(arg, int) and not isinstance(arg, bool) else _bad(verb, arg)
    if verb in "dxXob":
        if isinstance(arg, str) and verb in "xX":
            text = arg.encode().hex()
            return text.upper() if verb == "X" else text
        if not isinstance(arg, int) or isinstance(arg, bool):
            return _bad(verb, arg)
        spec = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
        text = format(arg, spec)
        return ("+" + text if "+" in flags and arg >= 0 else text) if verb == "d" else text
    if verb in "feEgG":
        if isinstance(arg, int) and not isinstance(arg, bool):
            return _bad(verb, arg)
        if not isinstance(arg, float):
            return _bad(verb, arg)
        if verb == "f":
            return go_float(arg, "f", 6 if prec is None else prec)
        if verb in "eE":
            text = go_float(arg, "e", 6 if prec is None else prec)
            return text.upper() if verb == "E" else text
        text = go_float(arg, "g", -1 if prec is None else prec)
        return text.upper() if verb == "G" else text
    return f"%!{verb}({go_type(arg)}={go_str(arg)})"


def go_json(value: Any, indent: str = "", escape_html: bool = True, _level: int = 0) -> str:
    """``json.Marshal`` (or ``MarshalIndent(v, "", indent)``) of a template value."""
    nl = ("\n" + indent * (_level + 1)) if indent else ""
    end = ("\n" + indent * _level) if indent else ""
    sep = ": " if indent else ":"
    if value is None or value is NO_VALUE or getattr(value, "nil", False):
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value, escape_html)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        keys = list(value)
    elif isinstance(value, dict):
        keys = _sorted_keys(value)
    else:
        keys = None
    if keys is not None:
        assert isinstance(value, dict)
        if not keys:
            return "{}"
        parts = [
            _json_string(str(k), escape_html) + sep + go_json(value[k], indent, escape_html, _level + 1)
            for k in keys
        ]
        return "{" + nl + ("," + nl).join(parts) + end + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [go_json(v, indent, escape_html, _level + 1) for v in value]
        return "[" + nl + ("," + nl).join(items) + end + "]"
    return _json_string(str(value), escape_html)


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {go_float(f)}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        text = go_float(f, "e")
        return re.sub(r"e([+-])0(\d)$", r"e\1\2", text)
    return go_float(f, "f")


def _json_string(s: str, escape_html: bool) -> str:
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif o < 0x20 or (escape_html and c in "<>&") or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)
