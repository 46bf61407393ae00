"""consul-template's helper functions that need no agent: strings, parsing, JSON/YAML,
grouping, math, time. Same names, argument order (``{{ 10 | subtract 2 }}`` is 8) and
error messages as consul-template's ``funcs.go``; regular expressions are RE2, as in Go.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import re
import socket
from collections.abc import Callable
from typing import Any

import re2  # type: ignore[import-untyped]
import yaml  # type: ignore[import-untyped]

from waypost.template.evaluate import FuncError
from waypost.template.gofmt import go_json, go_str, go_type
from waypost.template.values import HealthService, KeyPair

__all__ = ["HELPERS", "Scratch", "go_time_format"]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def _regex(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as err:
        raise FuncError(f"error parsing regexp: {err}") from None


def _expand(template: str, m: Any) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``$$``; unknown groups are ""."""
    out: list[str] = []
    i = 0
    while i < len(template):
        c = template[i]
        if c != "$" or i + 1 >= len(template):
            out.append(c)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i + 2)
            name = template[i + 2 : end] if end > 0 else ""
            if not name or not re.fullmatch(r"\w+", name):
                out.append(c)
                i += 1
                continue
            i = end + 1
        else:
            mm = re.match(r"\w+", template[i + 1 :])
            if mm is None:
                out.append(c)
                i += 1
                continue
            name = mm.group(0)
            i += 1 + len(name)
        try:
            value = m.group(int(name)) if name.isdigit() else m.group(name)
        except (IndexError, KeyError, ValueError, re2.error):
            value = None
        out.append(value or "")
    return "".join(out)


def regex_replace_all(pattern: str, replacement: str, s: str) -> str:
    rx = _regex(pattern)
    out: list[str] = []
    last = 0
    for m in rx.finditer(s):
        out.append(s[last : m.start()])
        out.append(_expand(replacement, m))
        last = m.end()
    out.append(s[last:])
    return "".join(out)


def regex_match(pattern: str, s: str) -> bool:
    return _regex(pattern).search(s) is not None


# -- Go time layouts ---------------------------------------------------------------------

_LAYOUT = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|Z07:00|Z0700|Z07|-07:00|-0700|-07|"
    r"\.0+|\.9+|,0+|,9+|01|02|_2|03|04|05|06|15|PM|pm|1|2|3|4|5"
)


def go_time_format(when: dt.datetime, layout: str) -> str:
    """``time.Time.Format`` with Go's reference-date layouts ("2006-01-02T15:04:05Z07:00")."""

    def zone(colon: bool, z: bool, short: bool = False) -> str:
        offset = when.utcoffset() or dt.timedelta(0)
        if z and offset == dt.timedelta(0):
            return "Z"
        total = int(offset.total_seconds()) // 60
        sign = "-" if total < 0 else "+"
        hours, minutes = divmod(abs(total), 60)
        if short:
            return f"{sign}{hours:02d}"
        return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"

    def token(m: re.Match[str]) -> str:
        t = m.group(0)
        if t[0] in ".," and len(t) > 1:
            digits = f"{when.microsecond:06d}000"[: len(t) - 1]
            if t[1] == "0":
                return t[0] + digits
            digits = digits.rstrip("0")
            return t[0] + digits if digits else ""
        table: dict[str, Callable[[], str]] = {
            "January": lambda: when.strftime("%B"),
            "Jan": lambda: when.strftime("%b"),
            "Monday": lambda: when.strftime("%A"),
            "Mon": lambda: when.strftime("%a"),
            "MST": lambda: when.tzname() or "UTC",
            "2006": lambda: f"{when.year:04d}",
            "06": lambda: f"{when.year % 100:02d}",
            "01": lambda: f"{when.month:02d}",
            "1": lambda: str(when.month),
            "02": lambda: f"{when.day:02d}",
            "_2": lambda: f"{when.day:2d}",
            "2": lambda: str(when.day),
            "15": lambda: f"{when.hour:02d}",
            "03": lambda: f"{(when.hour % 12) or 12:02d}",
            "3": lambda: str((when.hour % 12) or 12),
            "04": lambda: f"{when.minute:02d}",
            "4": lambda: str(when.minute),
            "05": lambda: f"{when.second:02d}",
            "5": lambda: str(when.second),
            "PM": lambda: "PM" if when.hour >= 12 else "AM",
            "pm": lambda: "pm" if when.hour >= 12 else "am",
            "Z07:00": lambda: zone(True, True),
            "Z0700": lambda: zone(False, True),
            "Z07": lambda: zone(False, True, short=True),
            "-07:00": lambda: zone(True, False),
            "-0700": lambda: zone(False, False),
            "-07": lambda: zone(False, False, short=True),
        }
        return table[t]()

    return _LAYOUT.sub(token, layout)


def timestamp(*args: str) -> str:
    now = dt.datetime.now().astimezone()
    if not args:
        return go_time_format(now, "2006-01-02T15:04:05Z07:00")
    if len(args) == 1:
        if args[0] == "unix":
            return str(int(now.timestamp()))
        return go_time_format(now, args[0])
    raise FuncError(f"timestamp: wrong number of arguments, expected 0 or 1, but got {len(args)}")


# -- collections -------------------------------------------------------------------------


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
                    raise FuncError(
                        f'cannot parse {value} as number : strconv.Atoi: parsing "{value}": invalid syntax'
                    ) from None
            parts.append(re.sub(r"[^a-zA-Z0-9_-]", "_", value))
        groups.setdefault("_".join(parts), []).append(svc)
    return groups


def _in(container: Any, value: Any) -> bool:
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
    return _in(container, value)


def _contains_some(ret_true: bool, invert: bool) -> Callable[[list[Any], Any], bool]:
    def check(values: list[Any], container: Any) -> bool:
        for v in values or []:
            if _in(container, v) != invert:
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


def indent(spaces: int, s: str) -> str:
    if spaces < 0:
        raise FuncError("indent value must be a positive integer")
    prefix = " " * spaces
    return "".join(prefix + line if line != "\n" else line for line in s.splitlines(keepends=True))


def join(sep: str, items: list[Any]) -> str:
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise FuncError(f"wrong type for value; expected []string; got {go_type(items)}")
    return sep.join(items)


def split(sep: str, s: str) -> list[str]:
    s = s.strip()
    if not s:
        return []
    return s.split(sep) if sep else list(s)


def split_to_map(sep1: str, sep2: str, s: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in split(sep1, s):
        key, found, value = item.partition(sep2)
        if not found:
            raise FuncError(f"cannot split {item!r} with separator {sep2!r}")
        out[key] = value
    return out


def loop(*args: int) -> list[int]:
    if len(args) == 1:
        return list(range(args[0]))
    if len(args) == 2:
        return list(range(args[0], args[1]))
    raise FuncError(f"loop: wrong number of arguments, expected 1 or 2, but got {len(args)}")


# -- parsing -----------------------------------------------------------------------------


def parse_bool(s: str) -> bool:
    if s == "":
        return False
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise FuncError(f'parseBool: strconv.ParseBool: parsing "{s}": invalid syntax')


def parse_float(s: str) -> float:
    if s == "":
        return 0.0
    try:
        return float(s.replace("_", ""))
    except ValueError:
        raise FuncError(f'parseFloat: strconv.ParseFloat: parsing "{s}": invalid syntax') from None


def parse_int(s: str) -> int:
    if s == "":
        return 0
    try:
        value = int(s, 10)
    except ValueError:
        raise FuncError(f'parseInt: strconv.ParseInt: parsing "{s}": invalid syntax') from None
    if not -(2**63) <= value < 2**63:
        raise FuncError(f'parseInt: strconv.ParseInt: parsing "{s}": value out of range')
    return value


def parse_uint(s: str) -> int:
    if s == "":
        return 0
    if not s.isdigit():
        raise FuncError(f'parseUint: strconv.ParseUint: parsing "{s}": invalid syntax')
    value = int(s, 10)
    if value >= 2**64:
        raise FuncError(f'parseUint: strconv.ParseUint: parsing "{s}": value out of range')
    return value


def _floats(value: Any) -> Any:
    """Go decodes every JSON number into float64."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    return value


def parse_json(s: str) -> Any:
    if s == "":
        return {}
    try:
        return _floats(json.loads(s))
    except ValueError as err:
        raise FuncError(f"parseJSON: {err}") from None


def parse_yaml(s: str) -> Any:
    if s == "":
        return {}
    try:
        return yaml.safe_load(s)
    except yaml.YAMLError as err:
        raise FuncError(f"parseYAML: {err}") from None


def to_json(value: Any) -> str:
    return go_json(value)


def to_json_pretty(value: Any) -> str:
    return go_json(value, "  ")


def to_unescaped_json(value: Any) -> str:
    return go_json(value, escape_html=False)


def to_unescaped_json_pretty(value: Any) -> str:
    return go_json(value, "  ", escape_html=False)


class _GoYamlDumper(yaml.SafeDumper):  # type: ignore[misc]
    """go-yaml's scalar styles: a string that would read back as another type (``"12"``,
    ``"yes"``) is double-quoted, a multi-line one is a literal block, the rest plain when
    possible and single-quoted otherwise."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> Any:
    if "\n" in text:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    if dumper.resolve(yaml.ScalarNode, text, (True, False)) != "tag:yaml.org,2002:str":
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", text)


_GoYamlDumper.add_representer(str, _represent_str)


def to_yaml(value: Any) -> str:
    """``yaml.Marshal`` of the value's JSON form (sorted keys), trimmed."""
    plain = json.loads(go_json(value, escape_html=False))
    return str(yaml.dump(plain, Dumper=_GoYamlDumper, default_flow_style=False, allow_unicode=True)).strip()


def to_title(s: str) -> str:
    """``cases.Title(language.Und, cases.NoLower)``: each word's first letter upper-cased."""
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), s)


# -- math --------------------------------------------------------------------------------


def _number(name: str, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FuncError(f"{name}: unknown type for {_go_q(value)} ({go_type(value)})")
    return value


def _go_q(value: Any) -> str:
    """``%q`` of a reflect.Value, as consul-template's math errors print their operands."""
    if isinstance(value, str):
        return '"' + value + '"'
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


# -- environment and misc ----------------------------------------------------------------


def env(name: str) -> str:
    return os.environ.get(name, "")


def must_env(name: str) -> str:
    if not os.environ.get(name):
        raise FuncError(f"required environment variable {name} is empty")
    return os.environ[name]


def env_or_default(name: str, default: str) -> str:
    return os.environ.get(name) or default


def plugin(name: str, *args: str) -> str:
    raise FuncError(
        "plugin: waypost template does not run plugins; use a command on the rendered file instead"
    )


def sockaddr(*args: str) -> str:
    """The basics of go-sockaddr: ``GetPrivateIP``, ``GetPublicIP``, ``GetAllInterfaces``-free
    forms; anything else names itself as unsupported."""
    expr = " ".join(args).strip().strip("{}").strip()
    if expr in ("GetPrivateIP", "GetPrivateIPs", "GetPublicIP", 'GetInterfaceIP "lo"'):
        return _local_ip(private=expr != "GetPublicIP", loopback=expr.endswith('"lo"'))
    raise FuncError(
        f'sockaddr: waypost supports GetPrivateIP, GetPublicIP and GetInterfaceIP "lo", not {expr!r}'
    )


def _local_ip(private: bool, loopback: bool) -> str:
    if loopback:
        return "127.0.0.1"
    try:
        addrs = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        addrs = set()
    for addr in sorted(addrs):
        ip = ipaddress.ip_address(addr)
        if ip.is_loopback:
            continue
        if ip.is_private == private:
            return str(ip)
    return ""


def _b64decode(s: str, urlsafe: bool = False) -> str:
    try:
        raw = base64.urlsafe_b64decode(s) if urlsafe else base64.b64decode(s, validate=True)
    except ValueError as err:
        raise FuncError(f"argument is not a valid base64 {'URL ' if urlsafe else ''}string: {err}") from None
    return raw.decode("utf-8", errors="replace")


def _unary(op: Callable[[str], str]) -> Callable[[str], str]:
    """A one-string helper whose signature the executor checks, as Go's reflection does."""

    def fn(s: str) -> str:
        return op(s)

    return fn


def _binary(op: Callable[[str, str], str]) -> Callable[[str, str], str]:
    def fn(a: str, b: str) -> str:
        return op(a, b)

    return fn


def replace_all(old: str, new: str, s: str) -> str:
    return s.replace(old, new)


class Scratch:
    """consul-template's per-render scratch pad (``scratch.Set``, ``scratch.MapValues``...)."""

    GO_TYPE = "*template.Scratch"

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def Key(self, k: str) -> bool:
        return k in self.values

    def Get(self, k: str) -> Any:
        return self.values.get(k)

    def Set(self, k: str, v: Any) -> str:
        self.values[k] = v
        return ""

    def SetX(self, k: str, v: Any) -> str:
        self.values.setdefault(k, v)
        return ""

    def MapSet(self, k: str, mk: str, v: Any) -> str:
        self.values.setdefault(k, {})[mk] = v
        return ""

    def MapSetX(self, k: str, mk: str, v: Any) -> str:
        self.values.setdefault(k, {}).setdefault(mk, v)
        return ""

    def MapValues(self, k: str) -> list[Any]:
        m = self.values.get(k) or {}
        return [m[key] for key in sorted(m)]


HELPERS: dict[str, Callable[..., Any]] = {
    "base64Decode": _b64decode,
    "base64Encode": _unary(lambda s: base64.b64encode(s.encode()).decode()),
    "base64URLDecode": _unary(lambda s: _b64decode(s, urlsafe=True)),
    "base64URLEncode": _unary(lambda s: base64.urlsafe_b64encode(s.encode()).decode()),
    "byKey": by_key,
    "byMeta": by_meta,
    "byTag": by_tag,
    "contains": contains,
    "containsAll": _contains_some(True, True),
    "containsAny": _contains_some(False, False),
    "containsNone": _contains_some(True, False),
    "containsNotAll": _contains_some(False, True),
    "env": env,
    "envOrDefault": env_or_default,
    "explode": explode,
    "hmacSHA256Hex": _binary(
        lambda message, key: hmac.new(key.encode(), message.encode(), "sha256").hexdigest()
    ),
    "in": _in,
    "indent": indent,
    "join": join,
    "loop": loop,
    "md5sum": _unary(lambda s: hashlib.md5(s.encode()).hexdigest()),
    "mustEnv": must_env,
    "parseBool": parse_bool,
    "parseFloat": parse_float,
    "parseInt": parse_int,
    "parseJSON": parse_json,
    "parseUint": parse_uint,
    "parseYAML": parse_yaml,
    "plugin": plugin,
    "regexMatch": regex_match,
    "regexReplaceAll": regex_replace_all,
    "replaceAll": replace_all,
    "sha256Hex": _unary(lambda s: hashlib.sha256(s.encode()).hexdigest()),
    "sockaddr": sockaddr,
    "split": split,
    "splitToMap": split_to_map,
    "timestamp": timestamp,
    "toJSON": to_json,
    "toJSONPretty": to_json_pretty,
    "toLower": _unary(str.lower),
    "toTitle": to_title,
    "toUnescapedJSON": to_unescaped_json,
    "toUnescapedJSONPretty": to_unescaped_json_pretty,
    "toUpper": _unary(str.upper),
    "toYAML": to_yaml,
    "trim": _binary(lambda cutset, s: s.strip(cutset)),
    "trimPrefix": _binary(lambda prefix, s: s.removeprefix(prefix)),
    "trimSpace": _unary(lambda s: s.strip(" \t\n\r\v\f")),
    "trimSuffix": _binary(lambda suffix, s: s.removesuffix(suffix)),
    "add": _arith("add", lambda x, y: x + y),
    "subtract": _arith("subtract", lambda x, y: x - y),
    "multiply": _arith("multiply", lambda x, y: x * y),
    "divide": _arith("divide", _go_div),
    "modulo": _arith("modulo", _go_mod),
    "minimum": _minmax("minimum", True),
    "maximum": _minmax("maximum", False),
}
