"""Query templates: Consul's HIL interpolation over every string of a query's ``Service``.

A template is compiled once when it is stored (so a bad one is refused at create time,
as Consul's state store refuses it) and rendered for each name it is executed under.
Only the part of HIL that prepared queries can use is understood: the variables
``name.full``, ``name.prefix``, ``name.suffix`` and ``agent.segment``, the function
``match(N)``, integer and string literals, and ``$${`` for a literal ``${``; anything else
is refused with Consul's "Bad format" message. ``Regexp`` is compiled with RE2, the engine
Go's regexp implements, so a pattern means here what it means to Consul and one Go would
refuse (a backreference, a lookahead) is refused here too, with RE2's own reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from waypost.goregexp import RegexpError, compile_regexp
from waypost.query.definition import NAME_PREFIX_MATCH, QueryError
from waypost.state.model import PreparedQuery, ServiceQuery

__all__ = ["CompiledTemplate", "compile_template"]

_TOKEN = re.compile(
    r'\s*(?:(?P<int>\d+)|(?P<str>"(?:[^"\\]|\\.)*")|(?P<ident>[A-Za-z_][\w.-]*)|(?P<punct>[(),]))'
)


class _HilError(ValueError):
    pass


@dataclass(frozen=True)
class _Call:
    func: str
    args: tuple[_Expr, ...]


_Expr = int | str | _Call | tuple[str]
"""An int or string literal, a function call, or a variable (a 1-tuple of its name)."""


def _parse(text: str) -> list[tuple[bool, Any]]:
    """The template as (is_interpolation, literal text or expression) pieces."""
    pieces: list[tuple[bool, Any]] = []
    pos = 0
    literal = ""
    while pos < len(text):
        start = text.find("${", pos)
        if start < 0:
            literal += text[pos:]
            break
        if start > 0 and text[start - 1] == "$":
            literal += text[pos : start - 1] + "${"
            pos = start + 2
            continue
        literal += text[pos:start]
        if literal:
            pieces.append((False, literal))
            literal = ""
        expr, pos = _expression(text, start + 2)
        end = _skip_space(text, pos)
        if end >= len(text) or text[end] != "}":
            raise _HilError(f"expected '}}' at column {end + 1}")
        pieces.append((True, expr))
        pos = end + 1
    if literal:
        pieces.append((False, literal))
    return pieces


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _expression(text: str, pos: int) -> tuple[_Expr, int]:
    m = _TOKEN.match(text, pos)
    if m is None or m.group("punct"):
        raise _HilError(f"expected expression at column {_skip_space(text, pos) + 1}")
    if m.group("int") is not None:
        return int(m.group("int")), m.end()
    if m.group("str") is not None:
        return msgspec.json.decode(m.group("str")), m.end()
    name = m.group("ident")
    after = _skip_space(text, m.end())
    if after < len(text) and text[after] == "(":
        args: list[_Expr] = []
        pos = _skip_space(text, after + 1)
        if pos < len(text) and text[pos] == ")":
            return _Call(name, ()), pos + 1
        while True:
            arg, pos = _expression(text, pos)
            args.append(arg)
            pos = _skip_space(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            if pos < len(text) and text[pos] == ")":
                return _Call(name, tuple(args)), pos + 1
            raise _HilError(f"expected ',' or ')' at column {pos + 1}")
    return (name,), m.end()


@dataclass(frozen=True)
class _Scope:
    variables: dict[str, str]
    matches: list[str]


def _evaluate(expr: _Expr, scope: _Scope) -> int | str:
    if isinstance(expr, int | str):
        return expr
    if isinstance(expr, tuple):
        value = scope.variables.get(expr[0])
        if value is None:
            raise _HilError(f"unknown variable accessed: {expr[0]}")
        return value
    if expr.func != "match":
        raise _HilError(f"unknown function called: {expr.func}")
    if len(expr.args) != 1:
        raise _HilError(f"match: expected 1 arguments, got {len(expr.args)}")
    index = _evaluate(expr.args[0], scope)
    if not isinstance(index, int):
        raise _HilError("match: argument 1 should be type int, got type string")
    return scope.matches[index] if index < len(scope.matches) else ""


def _render_text(pieces: list[tuple[bool, Any]], scope: _Scope) -> str:
    if len(pieces) == 1 and pieces[0][0]:
        value = _evaluate(pieces[0][1], scope)
        if not isinstance(value, str):
            raise _HilError("TypeInt")
        return value
    return "".join(str(_evaluate(p, scope)) if interpolated else p for interpolated, p in pieces)


Visitor = Callable[[str, str], str]


def _walk(service: ServiceQuery, visit: Visitor) -> ServiceQuery:
    """A copy of ``service`` with ``visit(path, text)`` applied to every string in it
    (Consul's ``walk``: struct fields, list items and map values, never map keys)."""
    return msgspec.convert(_walk_value(msgspec.to_builtins(service), "", visit), ServiceQuery)


def _walk_value(value: Any, path: str, visit: Visitor) -> Any:
    if isinstance(value, str):
        return visit(path, value)
    if isinstance(value, list):
        return [_walk_value(v, f"{path}[{i}]", visit) for i, v in enumerate(value)]
    if isinstance(value, dict):
        nested = not path or not path.endswith("Meta")
        return {
            k: _walk_value(v, f"{path}.{k}" if nested else f"{path}[{k}]", visit) for k, v in value.items()
        }
    return value


@dataclass(frozen=True)
class CompiledTemplate:
    """A stored template, parsed, ready to render under any name its prefix matches."""

    query: PreparedQuery
    trees: dict[str, list[tuple[bool, Any]]]
    regexp: Any

    def render(self, name: str, segment: str = "") -> PreparedQuery:
        """The query as executed under ``name`` (Consul's ``Render``); the name's
        match groups that do not take part are empty strings, as Go returns them."""
        matches: list[str] = []
        if self.regexp is not None:
            found = self.regexp.search(name)
            if found is not None:
                matches = [found.group(0), *(g or "" for g in found.groups())]
        scope = _Scope(
            {
                "name.full": name,
                "name.prefix": self.query.Name,
                "name.suffix": name[len(self.query.Name) :] if name.startswith(self.query.Name) else name,
                "agent.segment": segment,
            },
            matches,
        )

        def evaluate(path: str, text: str) -> str:
            try:
                return _render_text(self.trees[path], scope)
            except _HilError as exc:
                if str(exc) == "TypeInt":
                    raise QueryError(f"Expected Service{path} field to be a string, got TypeInt") from None
                raise QueryError(f"Bad evaluation for '{text}' in Service{path}: {exc}") from None

        service = _walk(self.query.Service, evaluate)
        if self.query.Template.RemoveEmptyTags and service.Tags is not None:
            service.Tags = [t for t in service.Tags if t]
        return msgspec.structs.replace(self.query, Service=service)


def compile_template(query: PreparedQuery) -> CompiledTemplate:
    """Raises QueryError with Consul's "failed compiling template: ..." messages; a test
    render under the bare prefix catches evaluation errors before the query is stored."""
    try:
        return _compile(query)
    except QueryError as exc:
        raise QueryError(f"failed compiling template: {exc}") from None


def _compile(query: PreparedQuery) -> CompiledTemplate:
    if query.Template.Type != NAME_PREFIX_MATCH:
        raise QueryError(f"Bad Template.Type '{query.Template.Type}'")
    trees: dict[str, list[tuple[bool, Any]]] = {}

    def parse(path: str, text: str) -> str:
        try:
            trees[path] = _parse(text)
        except _HilError as exc:
            raise QueryError(f"Bad format '{text}' in Service{path}: {exc}") from None
        return text

    _walk(query.Service, parse)
    regexp = None
    if query.Template.Regexp:
        try:
            regexp = compile_regexp(query.Template.Regexp)
        except RegexpError as exc:
            raise QueryError(f"Bad Regexp: error parsing regexp: {exc}: `{query.Template.Regexp}`") from None
    compiled = CompiledTemplate(query, trees, regexp)
    compiled.render(query.Name)
    return compiled
