"""Consul's ``?filter=`` expression language (go-bexpr v0.1.2, the version Consul pins).

bexpr validates an expression against typed Go structs: the struct decides which
selectors exist, which operators a field allows and what type a literal is coerced to.
Waypost evaluates against the JSON-shaped dicts its API returns, so those decisions are
taken from the value actually found, and what Consul rejects up front with a 400 is
raised here as ``FilterError`` when the clash shows up during evaluation.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from waypost.goregexp import RegexpError, compile_regexp
from waypost.gostrconv import GO_BOOLS

if TYPE_CHECKING:
    import lark
    from lark import Token, Tree, UnexpectedCharacters, UnexpectedToken
else:
    from waypost.lazy_imports import lark

__all__ = ["Filter", "FilterError", "compile_filter"]

_K = TypeVar("_K")
_M = TypeVar("_M", bound=Mapping[str, Any])
_Predicate = Callable[[Any], bool]


class FilterError(ValueError):
    """An expression Consul would answer with 400 Bad Request."""


# Keywords must stand between whitespace, as in bexpr's PEG grammar: "(a == b)or x == y"
# is rejected there, and "android" or "notes" are plain words. Accepting the start or end
# of the input as whitespace changes no verdict, only the error message.
_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negation
         | "(" or_expr ")"
         | match
match: selector BINARY_OP value
     | selector UNARY_OP
     | value MEMBER_OP selector
selector: NAME ("." NAME | "[" STRING "]")*
?value: selector | NUMBER | STRING

_OR: /(?<!\S)or(?!\S)/
_AND: /(?<!\S)and(?!\S)/
_NOT.2: /not(?!\S)/
BINARY_OP: "==" | "!=" | /(?<!\S)(not\s+)?(contains|matches)(?!\S)/
UNARY_OP: /(?<!\S)is\s+(not\s+)?empty/
MEMBER_OP: /(?<!\S)(not\s+)?in(?!\S)/
NAME: /[a-zA-Z][a-zA-Z0-9_]*/
NUMBER: /-?(0|[1-9][0-9]*)(\.[0-9]+)?(?=\s|\)|$)/
STRING: /"[^"]*"|`[^`]*`/
%ignore /[ \t\r\n]+/
"""


@cache
def _parser() -> lark.Lark:
    """Built on the first filter, so that an agent never asked for one does not load lark."""
    return lark.Lark(_GRAMMAR, parser="lalr", lexer="contextual")


# Building and evaluating recurse once per level; real filters stay a few levels deep.
_MAX_DEPTH = 64

_LABELS = {
    "_OR": '"or"',
    "_AND": '"and"',
    "_NOT": '"not"',
    "LPAR": '"("',
    "RPAR": '")"',
    "DOT": '"."',
    "LSQB": '"["',
    "RSQB": '"]"',
    "BINARY_OP": '"==", "!=", "[not] contains", "[not] matches"',
    "UNARY_OP": '"is [not] empty"',
    "MEMBER_OP": '"[not] in"',
    "NAME": "a selector",
    "NUMBER": "a number",
    "STRING": "a string",
    "$END": "the end of the expression",
}


class _Op(enum.Enum):
    EQUAL = enum.auto()
    IN = enum.auto()
    MATCHES = enum.auto()
    IS_EMPTY = enum.auto()


# Every operator is a base test, possibly negated; "contains" is "in" read backwards.
_OPERATORS = {
    "==": (_Op.EQUAL, False),
    "!=": (_Op.EQUAL, True),
    "in": (_Op.IN, False),
    "not in": (_Op.IN, True),
    "contains": (_Op.IN, False),
    "not contains": (_Op.IN, True),
    "matches": (_Op.MATCHES, False),
    "not matches": (_Op.MATCHES, True),
    "is empty": (_Op.IS_EMPTY, False),
    "is not empty": (_Op.IS_EMPTY, True),
}

# strconv.ParseBool (GO_BOOLS) and strconv.ParseInt(s, 0, 64): the coercions bexpr applies to literals.
_GO_INT = re.compile(
    r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)"
)
_GO_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|.?)"
)
_GO_SIMPLE_ESCAPES = dict(zip("abfnrtv\\", b"\a\b\f\n\r\t\v\\", strict=True))


def _go_int(raw: str) -> int:
    digits = raw.replace("_", "")
    unsigned = digits.lstrip("+-")
    # Go still reads a leading zero as octal ("017" == 15), which Python's int() refuses.
    return int(digits, 8 if unsigned[:1] == "0" and unsigned[1:2].isdigit() else 0)


def _coercions(raw: str) -> dict[type, object]:
    """The literal as each JSON scalar type it can be read as, computed once per expression."""
    coerced: dict[type, object] = {}
    if raw in GO_BOOLS:
        coerced[bool] = GO_BOOLS[raw]
    if _GO_INT.fullmatch(raw):
        coerced[int] = _go_int(raw)
    # Python's float() also strips whitespace and reads non-ASCII digits; Go does neither.
    if raw.isascii() and raw == raw.strip():
        with suppress(ValueError):
            coerced[float] = float(raw)
    return coerced


def _unquote(token: Token) -> str:
    """strconv.Unquote, which bexpr applies to string literals.

    Go strings are bytes, so "\\xc3\\xa9" spells "é" and escapes are assembled as bytes.
    """
    body = token[1:-1]
    if token[0] == "`":
        return body.replace("\r", "")
    if "\n" in body:
        raise FilterError(f"Newline in string literal at line {token.line}, column {token.column}")
    out = bytearray()
    pos = 0
    for escape in _GO_ESCAPE.finditer(body):
        out += body[pos : escape.start()].encode("utf-8", "surrogatepass")
        pos = escape.end()
        simple, hex_byte, octal, rune4, rune8 = escape.groups()
        try:
            if simple:
                out.append(_GO_SIMPLE_ESCAPES[simple])
            elif hex_byte or octal:
                out.append(int(hex_byte, 16) if hex_byte else int(octal, 8))
            elif rune4 or rune8:
                out += chr(int(rune4 or rune8, 16)).encode()
            else:
                raise ValueError(escape.group())
        except ValueError:
            raise FilterError(
                f"Invalid escape sequence {escape.group()!r} in string literal "
                f"at line {token.line}, column {token.column}"
            ) from None
    out += body[pos:].encode("utf-8", "surrogatepass")
    return out.decode("utf-8", "replace")


def _compile_regexp(raw: str) -> Any:
    try:
        return compile_regexp(raw)
    except RegexpError as exc:
        raise FilterError(f'Failed to compile regular expression "{raw}": {exc}') from None


class _Match:
    """One ``selector op value`` test, with bexpr v0.1.2's walking rules.

    Selecting through a list tests each element and matches if any does, whatever the
    operator (so ``Checks.Status != passing`` means "some check is not passing"). A
    missing map key or a null behaves as an empty value: nothing equals, contains or
    matches it, and it is empty.
    """

    __slots__ = (
        "_absent",
        "_coerced",
        "_negate",
        "_op",
        "_operator",
        "_path",
        "_pattern",
        "_raw",
        "_selector",
    )

    def __init__(self, path: tuple[str, ...], operator: str, raw: str) -> None:
        self._path = path
        self._selector = ".".join(path)
        self._operator = operator
        self._op, self._negate = _OPERATORS[operator]
        self._raw = raw
        self._absent = (self._op is _Op.IS_EMPTY) != self._negate
        self._coerced = _coercions(raw)
        self._pattern: Any = _compile_regexp(raw) if self._op is _Op.MATCHES else None

    def __call__(self, obj: Any) -> bool:
        return self._walk(obj, 0)

    def _walk(self, value: Any, depth: int) -> bool:
        if value is None:
            return self._absent
        if depth == len(self._path):
            return self._test(value) != self._negate
        if isinstance(value, list | tuple):
            return any(self._walk(item, depth) for item in value)
        if isinstance(value, Mapping):
            return self._walk(value.get(self._path[depth]), depth + 1)
        raise FilterError(f'Selector "{".".join(self._path[: depth + 1])}" is not valid')

    def _test(self, value: Any) -> bool:
        if self._op is _Op.EQUAL:
            return self._equals(value)
        if self._op is _Op.IN:
            if isinstance(value, str | Mapping):
                return self._raw in value
            if isinstance(value, list | tuple):
                return any(self._equals(item) for item in value)
        elif self._op is _Op.MATCHES:
            if isinstance(value, str):
                return self._pattern.search(value) is not None
        elif isinstance(value, str | list | tuple | Mapping):
            return not value
        raise self._invalid_operator()

    def _equals(self, value: Any) -> bool:
        if isinstance(value, str):
            return value == self._raw
        kind = type(value)
        if kind not in (bool, int, float):
            raise self._invalid_operator()
        if kind not in self._coerced:
            raise FilterError(
                f'Failed to coerce value "{self._raw}" for selector "{self._selector}" to {kind.__name__}'
            )
        return bool(value == self._coerced[kind])

    def _invalid_operator(self) -> FilterError:
        return FilterError(f'Invalid match operator "{self._operator}" for selector "{self._selector}"')


def _literal(node: Tree[Token] | Token) -> str:
    """A value as text; a bare word on the value side is parsed as a selector and stands for its own text."""
    if isinstance(node, lark.Tree):
        return ".".join(_selector(node))
    return _unquote(node) if node.type == "STRING" else str(node)


def _selector(node: Tree[Token]) -> tuple[str, ...]:
    return tuple(_literal(part) for part in node.children)


def _build(node: Tree[Token], selectors: list[tuple[str, ...]]) -> _Predicate:
    """The parse tree as nested predicates, collecting every selector for root checks."""
    if node.data == "match":
        first, operator, *rest = node.children
        assert isinstance(operator, lark.Token)
        if operator.type == "MEMBER_OP":
            first, rest = rest[0], [first]
        assert isinstance(first, lark.Tree)
        path = _selector(first)
        selectors.append(path)
        return _Match(path, " ".join(operator.split()), _literal(rest[0]) if rest else "")
    operands = [_build(child, selectors) for child in node.children if isinstance(child, lark.Tree)]
    if node.data == "negation":
        (operand,) = operands
        return lambda obj: not operand(obj)
    if node.data == "and_expr":
        return lambda obj: all(test(obj) for test in operands)
    return lambda obj: any(test(obj) for test in operands)


@dataclass(frozen=True, slots=True)
class Filter:
    """A compiled expression, shared by every request that repeats it (blocking queries do)."""

    expression: str
    selectors: tuple[tuple[str, ...], ...]
    _predicate: _Predicate = field(repr=False, compare=False)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether ``obj`` (as ``msgspec.to_builtins`` shapes it) passes the filter.

        Raises FilterError where the data contradicts the expression (an operator the
        field's type does not support, a literal that cannot be read as that type).
        """
        return self._predicate(obj)

    def apply(self, items: Iterable[_M]) -> list[_M]:
        return [item for item in items if self._predicate(item)]

    def apply_map(self, items: Mapping[_K, _M]) -> dict[_K, _M]:
        """For endpoints such as /v1/agent/services that answer with a map: Consul filters its values."""
        return {key: item for key, item in items.items() if self._predicate(item)}


def _syntax_error(exc: UnexpectedCharacters | UnexpectedToken) -> FilterError:
    where = f" at line {exc.line}, column {exc.column}"
    if isinstance(exc, lark.UnexpectedCharacters):
        expected = exc.allowed
        found = "unterminated string literal" if exc.char in '"`' else f"unexpected character {exc.char!r}"
    elif exc.token.type == "$END":
        # lark places the end at the last token's start, which would point at the wrong spot.
        expected, where, found = exc.accepts or exc.expected, "", "unexpected end of expression"
    else:
        expected, found = exc.accepts or exc.expected, f"unexpected {str(exc.token)!r}"
    wanted = ", ".join(sorted({_LABELS.get(name, name) for name in expected}))
    return FilterError(f"Syntax error{where}: {found}; expected {wanted}")


def _depth(tree: Tree[Token]) -> int:
    """Measured without recursion, so that hostile nesting cannot exhaust the stack here."""
    depth, level = 0, [tree]
    while level:
        depth += 1
        level = [child for node in level for child in node.children if isinstance(child, lark.Tree)]
    return depth


@lru_cache(maxsize=512)
def _compile(expression: str) -> Filter:
    if not expression.strip():
        raise FilterError("Filter expression is empty")
    try:
        tree = _parser().parse(expression)
    except (lark.UnexpectedCharacters, lark.UnexpectedToken) as exc:
        raise _syntax_error(exc) from None
    if _depth(tree) > _MAX_DEPTH:
        raise FilterError(f"Filter expression is nested more than {_MAX_DEPTH} levels deep")
    selectors: list[tuple[str, ...]] = []
    predicate = _build(tree, selectors)
    return Filter(expression, tuple(selectors), predicate)


def compile_filter(expression: str, allowed_roots: Collection[str] | None = None) -> Filter:
    """Parse ``expression`` once (cached) and check its selectors against ``allowed_roots``.

    ``allowed_roots`` stands in for the Go struct Consul validates selectors against: the
    top-level field names of the endpoint's result type. Raises FilterError with a
    message naming the offending position, token or selector.
    """
    compiled = _compile(expression)
    if allowed_roots is not None:
        for path in compiled.selectors:
            if path[0] not in allowed_roots:
                raise FilterError(f'Selector "{path[0]}" is not valid')
    return compiled
