"""Go's ``strconv`` spellings that Consul's behaviour depends on: which texts are booleans
(``ParseBool``: every boolean given as text, in flags, environment switches and filter
literals, so "TRUE" and "t" count but "yes" and "tRuE" do not) and how a name is quoted
(``Quote``, the ``%q`` of Consul's and consul-template's messages, and of ``NumError``,
the "strconv.Atoi: parsing ..." they pass on), and which texts ``Atoi`` and ``ParseUint``
take as numbers.
One definition each keeps every reader and message agreeing with Go."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["GO_BOOLS", "atoi", "go_quote", "num_error", "parse_int64", "parse_uint64"]

GO_BOOLS: Final[Mapping[str, bool]] = MappingProxyType(
    dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True)
    | dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False)
)

_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                   "\t": "\\t", "\v": "\\v"}  # fmt: skip


def go_quote(text: str) -> str:
    """``strconv.Quote``: printable characters as they are, the rest escaped as Go does
    (``\\x`` below a space and for DEL, ``\\u``/``\\U`` above, a lone surrogate as U+FFFD)."""
    out = ['"']
    for c in text:
        code = ord(c)
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code < 0xE000:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def num_error(func: str, text: str, why: str = "invalid syntax") -> str:
    """``strconv.NumError``'s message for ``text`` refused by ``strconv.<func>``."""
    return f"strconv.{func}: parsing {go_quote(text)}: {why}"


_ATOI: Final = re.compile(r"[+-]?[0-9]+")


def parse_int64(text: str, func: str = "ParseInt") -> int:
    """``strconv.ParseInt(text, 10, 64)``: a sign and ASCII digits only, where Python's
    ``int()`` would also take spaces, "_" separators and other scripts' digits. ValueError
    carries Go's message, naming ``func``."""
    if not _ATOI.fullmatch(text):
        raise ValueError(num_error(func, text))
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(num_error(func, text, "value out of range"))
    return value


def atoi(text: str) -> int:
    """``strconv.Atoi`` (64-bit): ``ParseInt`` whose errors say Atoi."""
    return parse_int64(text, "Atoi")


def parse_uint64(text: str) -> int:
    """``strconv.ParseUint(text, 10, 64)``: ASCII digits only, no sign. ValueError carries
    Go's message."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(num_error("ParseUint", text))
    value = int(text)
    if value >= 2**64:
        raise ValueError(num_error("ParseUint", text, "value out of range"))
    return value
