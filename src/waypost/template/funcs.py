"""consul-template's helper functions that need no agent: strings, parsing, JSON/YAML,
grouping, math, time. Same names, argument order (``{{ 10 | subtract 2 }}`` is 8) and
error messages as consul-template's ``funcs.go``; regular expressions are RE2, as in Go.
"""

from __future__ import annotations

import base64
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

from waypost.gostrconv import GO_BOOLS, num_error, parse_int64, parse_uint64
from waypost.template.arith import ARITH
from waypost.template.errors import FuncError
from waypost.template.gofmt import go_json, go_type
from waypost.template.gotime import timestamp
from waypost.template.grouping import by_key, by_meta, by_tag, contains, contains_some, explode, is_in

__all__ = ["HELPERS", "Scratch"]

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
    if s and s not in GO_BOOLS:
        raise FuncError("parseBool: " + num_error("ParseBool", s))
    return GO_BOOLS.get(s, False)


def parse_float(s: str) -> float:
    if s == "":
        return 0.0
    try:
        return float(s.replace("_", ""))
    except ValueError:
        raise FuncError("parseFloat: " + num_error("ParseFloat", s)) from None


def parse_int(s: str) -> int:
    if s == "":
        return 0
    try:
        return parse_int64(s)
    except ValueError as exc:
        raise FuncError(f"parseInt: {exc}") from None


def parse_uint(s: str) -> int:
    if s == "":
        return 0
    try:
        return parse_uint64(s)
    except ValueError as exc:
        raise FuncError(f"parseUint: {exc}") from None


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
    "containsAll": contains_some(True, True),
    "containsAny": contains_some(False, False),
    "containsNone": contains_some(True, False),
    "containsNotAll": contains_some(False, True),
    "env": env,
    "envOrDefault": env_or_default,
    "explode": explode,
    "hmacSHA256Hex": _binary(
        lambda message, key: hmac.new(key.encode(), message.encode(), "sha256").hexdigest()
    ),
    "in": is_in,
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
    **ARITH,
}
