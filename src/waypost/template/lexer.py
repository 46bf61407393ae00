"""Go ``text/template/parse`` lexing: the same item kinds, trim markers and error texts.

The lexer runs eagerly over the whole template (templates are small) and records each
item's byte offset and line, so both parse errors (``name:line``) and execution errors
(``name:line:col``) can point where Go's would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto

from waypost.gostrconv import go_quote

__all__ = ["DELIMS", "KEYWORDS", "Item", "Kind", "lex"]

DELIMS = ("{{", "}}")
_SPACE = " \t\r\n"


class Kind(Enum):
    ERROR = auto()
    BOOL = auto()
    CHAR = auto()
    CHAR_CONSTANT = auto()
    COMMENT = auto()
    ASSIGN = auto()
    DECLARE = auto()
    EOF = auto()
    FIELD = auto()
    IDENTIFIER = auto()
    LEFT_DELIM = auto()
    LEFT_PAREN = auto()
    NUMBER = auto()
    PIPE = auto()
    RAW_STRING = auto()
    RIGHT_DELIM = auto()
    RIGHT_PAREN = auto()
    SPACE = auto()
    STRING = auto()
    TEXT = auto()
    VARIABLE = auto()
    DOT = auto()
    NIL = auto()
    KEYWORD = auto()


KEYWORDS = frozenset(
    ("block", "break", "continue", "define", "else", "end", "if", "range", "template", "with")
)


@dataclass(frozen=True, slots=True)
class Item:
    kind: Kind
    pos: int
    val: str
    line: int

    def describe(self) -> str:
        """How Go's ``item.String`` quotes an item in "unexpected ..." messages."""
        if self.kind is Kind.EOF:
            return "EOF"
        if self.kind is Kind.ERROR:
            return self.val
        if self.kind is Kind.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


class _Lexer:
    def __init__(self, text: str, delims: tuple[str, str]) -> None:
        self.text = text
        self.left, self.right = delims
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.items: list[Item] = []
        self.paren_depth = 0

    def emit(self, kind: Kind) -> None:
        self.items.append(Item(kind, self.start, self.text[self.start : self.pos], self.start_line))
        self.start = self.pos
        self.start_line = self.line

    def ignore(self) -> None:
        self.start = self.pos
        self.start_line = self.line

    def advance(self, n: int) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def error(self, message: str) -> None:
        self.items.append(Item(Kind.ERROR, self.start, message, self.start_line))

    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def run(self) -> list[Item]:
        state = "text"
        while state != "stop":
            state = self.lex_text() if state == "text" else "text" if self.lex_inside_action() else "stop"
        return self.items

    def lex_text(self) -> str:
        i = self.text.find(self.left, self.pos)
        if i < 0:
            self.advance(len(self.text) - self.pos)
            if self.pos > self.start:
                self.emit(Kind.TEXT)
            self.emit(Kind.EOF)
            return "stop"
        after = i + len(self.left)
        trim = (
            self.text.startswith("-", after)
            and self.text[after + 1 : after + 2] != ""
            and self.text[after + 1] in _SPACE
        )
        end = len(self.text[self.start : i].rstrip(_SPACE)) + self.start if trim else i
        if end > self.start:
            self.items.append(Item(Kind.TEXT, self.start, self.text[self.start : end], self.start_line))
        self.advance(i - self.pos)
        self.ignore()
        return self.lex_left_delim(trim)

    def lex_left_delim(self, trim: bool) -> str:
        self.advance(len(self.left) + (2 if trim else 0))
        after = self.pos
        if self.text.startswith("/*", after):
            return self.lex_comment()
        self.items.append(Item(Kind.LEFT_DELIM, self.start, self.left, self.start_line))
        self.start = self.pos
        self.start_line = self.line
        self.paren_depth = 0
        return "action"

    def lex_comment(self) -> str:
        self.advance(2)
        end = self.text.find("*/", self.pos)
        if end < 0:
            self.error("unclosed comment")
            return "stop"
        self.advance(end + 2 - self.pos)
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
            return "stop"
        self.advance((2 if trim else 0) + len(self.right))
        self.ignore()
        if trim:
            self.skip_space()
        return "text"

    def skip_space(self) -> None:
        while self.peek() and self.peek() in _SPACE:
            self.advance(1)
        self.ignore()

    def at_right_delim(self) -> tuple[bool, bool]:
        if self.text.startswith(self.right, self.pos):
            return True, False
        if (
            self.peek() != ""
            and self.peek() in _SPACE
            and self.text.startswith("-" + self.right, self.pos + 1)
        ):
            return True, True
        return False, False

    def lex_inside_action(self) -> bool:
        while True:
            delim, trim = self.at_right_delim()
            if delim:
                if self.paren_depth:
                    self.error("unclosed left paren")
                    return False
                if trim:
                    self.advance(2)
                    self.ignore()
                self.advance(len(self.right))
                self.emit(Kind.RIGHT_DELIM)
                if trim:
                    self.skip_space()
                return True
            c = self.peek()
            if c == "":
                self.error("unclosed action")
                return False
            if c in _SPACE:
                while self.peek() and self.peek() in _SPACE:
                    if self.at_right_delim() == (True, True):
                        break
                    self.advance(1)
                if self.pos > self.start:
                    self.emit(Kind.SPACE)
            elif c == "=":
                self.advance(1)
                self.emit(Kind.ASSIGN)
            elif c == ":":
                if self.peek(1) != "=":
                    self.advance(1)
                    self.error("expected :=")
                    return False
                self.advance(2)
                self.emit(Kind.DECLARE)
            elif c == "|":
                self.advance(1)
                self.emit(Kind.PIPE)
            elif c == '"':
                if not self.lex_quote('"', Kind.STRING, "unterminated quoted string"):
                    return False
            elif c == "'":
                if not self.lex_quote("'", Kind.CHAR_CONSTANT, "unterminated character constant"):
                    return False
            elif c == "`":
                end = self.text.find("`", self.pos + 1)
                if end < 0:
                    self.error("unterminated raw quoted string")
                    return False
                self.advance(end + 1 - self.pos)
                self.emit(Kind.RAW_STRING)
            elif c == "$":
                self.advance(1)
                self.lex_word(Kind.VARIABLE)
            elif c == "." and not self.peek(1).isdigit():
                self.advance(1)
                if _is_alnum(self.peek()):
                    self.lex_word(Kind.FIELD)
                else:
                    self.emit(Kind.DOT)
            elif c in "+-" or c.isdigit() or c == ".":
                if not self.lex_number():
                    return False
            elif _is_alnum(c):
                self.lex_word(Kind.IDENTIFIER)
            elif c == "(":
                self.advance(1)
                self.emit(Kind.LEFT_PAREN)
                self.paren_depth += 1
            elif c == ")":
                self.advance(1)
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    self.error("unexpected right paren")
                    return False
                self.emit(Kind.RIGHT_PAREN)
            elif c.isascii() and c.isprintable():
                self.advance(1)
                self.emit(Kind.CHAR)
            else:
                self.error(f"unrecognized character in action: {_go_quote_rune(c)}")
                return False

    def lex_word(self, kind: Kind) -> None:
        while _is_alnum(self.peek()):
            self.advance(1)
        word = self.text[self.start : self.pos]
        if kind is Kind.IDENTIFIER:
            if word in KEYWORDS:
                kind = Kind.KEYWORD
            elif word in ("true", "false"):
                kind = Kind.BOOL
            elif word == "nil":
                kind = Kind.NIL
        self.emit(kind)

    def lex_quote(self, quote: str, kind: Kind, message: str) -> bool:
        i = self.pos + 1
        while i < len(self.text):
            c = self.text[i]
            if c == "\\":
                i += 2
                continue
            if c == "\n":
                break
            if c == quote:
                self.advance(i + 1 - self.pos)
                self.emit(kind)
                return True
            i += 1
        self.error(message)
        return False

    def lex_number(self) -> bool:
        m = _NUMBER.match(self.text, self.pos)
        assert m is not None
        self.advance(m.end() - self.pos)
        if _is_alnum(self.peek()):
            self.advance(1)
            self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
            return False
        self.emit(Kind.NUMBER)
        return True


_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?|0[bB][01_]*|0[oO][0-7_]*"
    r"|[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?)i?"
)


def _is_alnum(c: str) -> bool:
    return c != "" and (c == "_" or c.isalnum())


def _go_quote_rune(c: str) -> str:
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


def lex(text: str, delims: tuple[str, str] = DELIMS) -> list[Item]:
    """All items of ``text``, ending with EOF or an ERROR item; ``delims`` are the action
    delimiters (consul-template's ``left_delimiter``/``right_delimiter``)."""
    return _Lexer(text, delims).run()
