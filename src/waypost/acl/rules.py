"""Consul's ACL rules language, in HCL or JSON, to a ``Rules`` value the authorizer compiles.

Rules are parsed once, when a policy is written or first compiled, never per request. The
HCL reader is a small one for the rules' subset of HCL 1 (blocks, ``name = value``,
comments), written here rather than borrowed from the config loader because a rejected
policy must name the line it failed on, and the config loader's HCL 2 parser neither
speaks HCL 1 nor keeps positions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "LEVELS", "SCALARS", "TREES", "Rule", "Rules", "RulesError", "parse_rules"]

LEVELS = ("deny", "read", "write", "list")
KINDS = ("agent", "event", "key", "node", "query", "service", "session")
"""Resource kinds with named (exact) and ``_prefix`` rules."""
TREES = (*KINDS, "intention")
"""What authorizers answer for by name: the rule kinds, and intentions, whose rules are the
``intentions`` level of service rules (Consul's ``intentionRules``)."""
SCALARS = ("acl", "keyring", "mesh", "operator", "peering")
"""Resource kinds with one level for the whole cluster."""


MAX_DEPTH = 8
"""Rules nest three levels (kind, name, fields); deeper input is refused before recursing."""


class RulesError(ValueError):
    """Rules that do not parse or hold an invalid level; the message names the line."""


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    name: str
    prefix: bool
    policy: str
    line: int


@dataclass(slots=True)
class Rules:
    rules: list[Rule] = field(default_factory=list)
    scalars: dict[str, str] = field(default_factory=dict)


class _Node:
    """A parsed HCL value with the line it started on."""

    __slots__ = ("line", "value")

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line


_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r]+)|(?P<nl>\n)|(?P<comment>(\#|//)[^\n]*)|(?P<block>/\*.*?\*/)
    |(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<ident>[A-Za-z_][A-Za-z0-9_.\-]*)|(?P<number>-?\d+(\.\d+)?)
    |(?P<punct>[{}\[\]=,:])""",
    re.VERBOSE | re.DOTALL,
)


def _tokens(text: str) -> list[tuple[str, Any, int, int]]:
    out: list[tuple[str, Any, int, int]] = []
    line, line_start, pos = 1, 0, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise RulesError(
                f"Failed to parse ACL rules: At {line}:{pos - line_start + 1}: illegal char {text[pos]!r}"
            )
        kind = m.lastgroup or ""
        col = pos - line_start + 1
        if kind == "nl":
            line, line_start = line + 1, m.end()
        elif kind == "block":
            line_start = m.start() + m.group().rfind("\n") + 1 if "\n" in m.group() else line_start
            line += m.group().count("\n")
        elif kind == "string":
            out.append(("string", json.loads(m.group()), line, col))
        elif kind in ("ident", "number", "punct"):
            out.append((kind, m.group(), line, col))
        pos = m.end()
    out.append(("eof", None, line, pos - line_start + 1))
    return out


class _Parser:
    """HCL 1's object grammar: ``key [key...] (= value | { body })`` repeated."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._fail(f"at most {MAX_DEPTH} nested blocks")

    def _peek(self) -> tuple[str, Any, int, int]:
        return self.toks[self.i]

    def _fail(self, expected: str) -> RulesError:
        kind, value, line, col = self._peek()
        got = "end of input" if kind == "eof" else repr(value)
        return RulesError(f"Failed to parse ACL rules: At {line}:{col}: expected {expected}, got {got}")

    def _take(self, kind: str, value: str | None = None) -> tuple[str, Any, int, int]:
        tok = self._peek()
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise self._fail(repr(value) if value else kind)
        self.i += 1
        return tok

    def body(self, end: str) -> list[tuple[str, _Node]]:
        items: list[tuple[str, _Node]] = []
        while not (self._peek()[0] == end or (end == "}" and self._peek()[1] == "}")):
            kind, key, line, _ = self._peek()
            if kind not in ("ident", "string"):
                raise self._fail("a rule name")
            self.i += 1
            labels: list[str] = []
            while self._peek()[0] == "string":
                labels.append(self._take("string")[1])
            tok = self._peek()
            if tok[1] == "=" and not labels:
                self.i += 1
                value = self.value()
            elif tok[1] == "{":
                value = self.object()
            else:
                raise self._fail("'=' or '{'")
            for label in reversed(labels):
                value = _Node([(label, value)], line)
            items.append((key, value))
            if self._peek()[1] == ",":
                self.i += 1
        return items

    def object(self) -> _Node:
        line = self._take("punct", "{")[2]
        self._enter()
        items = self.body("}")
        self._take("punct", "}")
        self.depth -= 1
        return _Node(items, line)

    def value(self) -> _Node:
        kind, value, line, _ = self._peek()
        if kind == "string":
            self.i += 1
            return _Node(value, line)
        if kind in ("number", "ident"):
            self.i += 1
            return _Node(value, line)
        if value == "{":
            return self.object()
        if value == "[":
            self.i += 1
            self._enter()
            items: list[Any] = []
            while self._peek()[1] != "]":
                items.append(self.value())
                if self._peek()[1] != ",":
                    break
                self.i += 1
            self._take("punct", "]")
            self.depth -= 1
            return _Node(items, line)
        raise self._fail("a value")


def _depth(value: Any) -> int:
    """Nesting of decoded JSON, without recursion (the value may nest hundreds deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _from_json(value: Any, line: int) -> _Node:
    """JSON rules in the shape the HCL reader yields; JSON carries no lines but the first."""
    if isinstance(value, dict):
        return _Node([(k, _from_json(v, line)) for k, v in value.items()], line)
    if isinstance(value, list):
        return _Node([_from_json(v, line) for v in value], line)
    return _Node(value, line)


def _entries(node: _Node) -> list[tuple[str, _Node]]:
    """Object members; a JSON list of objects (``"key": [{...}, {...}]``) is their union."""
    if isinstance(node.value, list) and all(isinstance(v, _Node) for v in node.value):
        return [pair for item in node.value for pair in _entries(item)]
    if isinstance(node.value, list):
        return list(node.value)
    raise RulesError(f"Failed to parse ACL rules: line {node.line}: expected a block, got {node.value!r}")


def parse_rules(text: str) -> Rules:
    """Rules from HCL or JSON (JSON when the text starts with ``{``, as Consul decides)."""
    out = Rules()
    if not text.strip():
        return out
    if text.lstrip().startswith("{"):
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RulesError(f"Failed to parse ACL rules: At {exc.lineno}:{exc.colno}: {exc.msg}") from None
        except RecursionError:
            raise RulesError(f"Failed to parse ACL rules: more than {MAX_DEPTH} nested blocks") from None
        if _depth(decoded) > MAX_DEPTH:
            raise RulesError(f"Failed to parse ACL rules: more than {MAX_DEPTH} nested blocks")
        top = _entries(_from_json(decoded, 1))
    else:
        parser = _Parser(text)
        top = parser.body("eof")
    for key, node in top:
        _add(out, key, node)
    return out


def _add(out: Rules, key: str, node: _Node) -> None:
    if key in SCALARS:
        level = node.value
        if not isinstance(level, str) or level not in LEVELS[:3]:
            raise RulesError(f"Invalid {key} policy: {level!r} (line {node.line})")
        out.scalars[key] = level
        return
    kind, prefix = (key[: -len("_prefix")], True) if key.endswith("_prefix") else (key, False)
    if kind not in KINDS:
        raise RulesError(f"Failed to parse ACL rules: line {node.line}: unknown rule {key!r}")
    for name, body in _entries(node):
        fields = dict(_entries(body))
        unknown = set(fields) - {"policy", "intentions"}
        policy = fields.get("policy")
        level = policy.value if policy is not None else ""
        if unknown:
            field_name = sorted(unknown)[0]
            raise RulesError(
                f"Failed to parse ACL rules: line {body.line}: unknown field {field_name!r} in {key}"
            )
        allowed = LEVELS if kind == "key" else LEVELS[:3]
        if not isinstance(level, str) or level not in allowed:
            line = policy.line if policy is not None else body.line
            raise RulesError(f"Invalid {key} policy: {name!r} has policy {level!r} (line {line})")
        intentions = fields.get("intentions")
        if intentions is not None and intentions.value not in LEVELS[:3]:
            raise RulesError(
                f"Invalid {key} intentions policy: {name!r} has {intentions.value!r} (line {body.line})"
            )
        out.rules.append(Rule(kind, str(name), prefix, level, body.line))
        if kind == "service":
            # Consul: a service rule without ``intentions`` lets its readers and writers read them.
            implied = "read" if level in ("read", "write") else "deny"
            derived = intentions.value if intentions is not None else implied
            out.rules.append(Rule("intention", str(name), prefix, derived, body.line))
