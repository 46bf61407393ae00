"""Go's ``text/template/parse``: items to trees, with Go's error messages.

A template file becomes a set of named trees (the file itself plus every ``define`` and
``block``). Errors read ``template: NAME:LINE: MESSAGE`` exactly as Go prints them, since
consul-template users know those messages.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from waypost.gostrconv import go_quote
from waypost.template import nodes as n
from waypost.template.errors import TemplateError
from waypost.template.lexer import DELIMS, Item, Kind, lex

__all__ = ["Tree", "go_unquote", "parse"]

Tree = n.ListNode

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def go_unquote(text: str) -> str:
    """``strconv.Unquote`` for "double", `raw` and 'c' literals; ValueError if malformed."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'`":
        raise ValueError("invalid syntax")
    quote, body = text[0], text[1:-1]
    if quote == "`":
        return body.replace("\r", "")
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            if c == quote:
                raise ValueError("invalid syntax")
            out.append(c)
            i += 1
            continue
        e = body[i + 1 : i + 2]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e == quote:
            out.append(e)
            i += 2
        elif e in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif e and e in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError("invalid syntax")
    result = "".join(out)
    if quote == "'" and len(result) != 1:
        raise ValueError("invalid syntax")
    return result


def _number(text: str) -> int | float:
    if not _underscores_ok(text):
        raise ValueError(text)
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    body = clean.lstrip("+-")
    lower = body.lower()
    if lower.startswith(("0x", "0o", "0b")) and "p" not in lower:
        return sign * int(body, 0)
    if any(c in lower for c in ".ep"):
        return sign * (float.fromhex(body) if lower.startswith("0x") else float(body))
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body, 8)
    return sign * int(body)


def _underscores_ok(text: str) -> bool:
    """Go's ``underscoreOK``: a "_" only between digits or after a base prefix, as Go's
    number parsing allows them, where stripping them all would take "1__2" or "1_"."""
    body = text.lstrip("+-")
    saw, start, hex_digits = "^", 0, False
    if len(body) >= 2 and body[0] == "0" and body[1].lower() in "box":
        saw, start, hex_digits = "0", 2, body[1].lower() == "x"
    for c in body[start:]:
        if c.isdigit() or (hex_digits and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


class _Parser:
    def __init__(self, name: str, text: str, funcs: Container[str], delims: tuple[str, str]) -> None:
        self.name = name
        self.items = lex(text, delims)
        self.i = 0
        self.funcs = funcs
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.trees: dict[str, Tree] = {}

    # -- items -----------------------------------------------------------------------
    def next(self) -> Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        return item

    def backup(self, count: int = 1) -> None:
        self.i -= count

    def peek(self) -> Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def next_non_space(self) -> Item:
        item = self.next()
        while item.kind is Kind.SPACE:
            item = self.next()
        return item

    def peek_non_space(self) -> Item:
        item = self.next_non_space()
        self.backup()
        return item

    def error(self, line: int, message: str) -> TemplateError:
        return TemplateError(f"template: {self.name}:{line}: {message}", self.name, line)

    def unexpected(self, item: Item, context: str) -> TemplateError:
        if item.kind is Kind.ERROR:
            return self.error(item.line, item.val)
        return self.error(item.line, f"unexpected {item.describe()} in {context}")

    def expect(self, kind: Kind, context: str) -> Item:
        item = self.next_non_space()
        if item.kind is not kind:
            raise self.unexpected(item, context)
        return item

    # -- structure -------------------------------------------------------------------
    def parse(self) -> dict[str, Tree]:
        root = n.ListNode(0, 1)
        while self.peek().kind is not Kind.EOF:
            if self.peek().kind is Kind.LEFT_DELIM:
                save = self.i
                self.next()
                word = self.next_non_space()
                if word.kind is Kind.KEYWORD and word.val == "define":
                    self.parse_define()
                    continue
                self.i = save
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                raise self.error(node.line, f"unexpected {node}")
            root.nodes.append(node)
        if self.peek().kind is Kind.ERROR:
            raise self.unexpected(self.peek(), "input")
        self.add(self.name, root)
        return self.trees

    def add(self, name: str, tree: Tree) -> None:
        existing = self.trees.get(name)
        if existing is None or not _is_empty(tree) or _is_empty(existing):
            self.trees[name] = tree

    def parse_define(self) -> None:
        name_item = self.next_non_space()
        name = self.template_name(name_item, "define clause")
        self.expect(Kind.RIGHT_DELIM, "define clause")
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            raise self.error(end.line, f"unexpected {end} in end")
        self.add(name, body)

    def template_name(self, item: Item, context: str) -> str:
        if item.kind in (Kind.STRING, Kind.RAW_STRING):
            try:
                return go_unquote(item.val)
            except ValueError:
                raise self.error(item.line, "invalid syntax") from None
        raise self.unexpected(item, context)

    def item_list(self) -> tuple[n.ListNode, n.Node]:
        items = n.ListNode(self.peek().pos, self.peek().line)
        while self.peek_non_space().kind is not Kind.EOF:
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                return items, node
            items.nodes.append(node)
        item = self.peek_non_space()
        if item.kind is Kind.ERROR:
            raise self.unexpected(item, "input")
        raise self.error(item.line, "unexpected EOF")

    def text_or_action(self) -> n.Node:
        item = self.next_non_space()
        if item.kind is Kind.TEXT:
            return n.TextNode(item.pos, item.line, item.val)
        if item.kind is Kind.LEFT_DELIM:
            return self.action()
        raise self.unexpected(item, "input")

    def action(self) -> n.Node:
        item = self.next_non_space()
        if item.kind is Kind.KEYWORD:
            handler: Callable[[Item], n.Node] | None = {
                "block": self.block_control,
                "break": self.break_control,
                "continue": self.continue_control,
                "else": self.else_control,
                "end": self.end_control,
                "if": self.if_control,
                "range": self.range_control,
                "template": self.template_control,
                "with": self.with_control,
            }.get(item.val)
            if handler is None:
                raise self.unexpected(item, "command")
            return handler(item)
        self.backup()
        pipe = self.pipeline("command", Kind.RIGHT_DELIM)
        return n.ActionNode(item.pos, item.line, pipe)

    def break_control(self, item: Item) -> n.Node:
        self.expect(Kind.RIGHT_DELIM, "{{break}}")
        if not self.range_depth:
            raise self.error(item.line, "{{break}} outside {{range}}")
        return n.BreakNode(item.pos, item.line)

    def continue_control(self, item: Item) -> n.Node:
        self.expect(Kind.RIGHT_DELIM, "{{continue}}")
        if not self.range_depth:
            raise self.error(item.line, "{{continue}} outside {{range}}")
        return n.ContinueNode(item.pos, item.line)

    def end_control(self, item: Item) -> n.Node:
        self.expect(Kind.RIGHT_DELIM, "end")
        return _End(item.pos, item.line)

    def else_control(self, item: Item) -> n.Node:
        peek = self.peek_non_space()
        if peek.kind is Kind.KEYWORD and peek.val in ("if", "with"):
            return _Else(item.pos, item.line, peek.val)
        self.expect(Kind.RIGHT_DELIM, "else")
        return _Else(item.pos, item.line, "")

    def control(self, item: Item, context: str) -> tuple[n.PipeNode, n.ListNode, n.ListNode | None]:
        mark = len(self.vars)
        pipe = self.pipeline(context, Kind.RIGHT_DELIM)
        if context == "range":
            self.range_depth += 1
        body, end = self.item_list()
        if context == "range":
            self.range_depth -= 1
        else_body: n.ListNode | None = None
        if isinstance(end, _Else):
            if end.chained and end.chained == context:
                self.next_non_space()
                else_body = n.ListNode(end.pos, end.line)
                else_body.nodes.append(self.if_control(item) if context == "if" else self.with_control(item))
            else:
                if end.chained:
                    raise self.error(end.line, f"unexpected <{end.chained}> in input")
                else_body, end = self.item_list()
                if not isinstance(end, _End):
                    raise self.error(end.line, f"expected end; found {end}")
        del self.vars[mark:]
        return pipe, body, else_body

    def if_control(self, item: Item) -> n.Node:
        pipe, body, else_body = self.control(item, "if")
        return n.IfNode(item.pos, item.line, pipe, body, else_body)

    def range_control(self, item: Item) -> n.Node:
        pipe, body, else_body = self.control(item, "range")
        return n.RangeNode(item.pos, item.line, pipe, body, else_body)

    def with_control(self, item: Item) -> n.Node:
        pipe, body, else_body = self.control(item, "with")
        return n.WithNode(item.pos, item.line, pipe, body, else_body)

    def template_control(self, item: Item) -> n.Node:
        token = self.next_non_space()
        name = self.template_name(token, "template clause")
        pipe: n.PipeNode | None = None
        if self.next_non_space().kind is not Kind.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline("template clause", Kind.RIGHT_DELIM)
        return n.TemplateNode(token.pos, token.line, name, pipe)

    def block_control(self, item: Item) -> n.Node:
        name = self.template_name(self.next_non_space(), "block clause")
        pipe = self.pipeline("block clause", Kind.RIGHT_DELIM)
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            raise self.error(end.line, f"unexpected {end} in block clause")
        self.add(name, body)
        return n.TemplateNode(item.pos, item.line, name, pipe)

    # -- pipelines -------------------------------------------------------------------
    def pipeline(self, context: str, end: Kind) -> n.PipeNode:
        start = self.peek_non_space()
        pipe = n.PipeNode(start.pos, start.line)
        self.declarations(pipe, context)
        while True:
            item = self.next_non_space()
            if item.kind is end:
                self.check_pipeline(pipe, context, item)
                return pipe
            if item.kind in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(item, context)

    def declarations(self, pipe: n.PipeNode, context: str) -> None:
        while True:
            var = self.peek_non_space()
            if var.kind is not Kind.VARIABLE:
                return
            save = self.i
            self.next_non_space()
            after = self.peek_non_space()
            if after.kind in (Kind.ASSIGN, Kind.DECLARE):
                self.next_non_space()
                pipe.is_assign = after.kind is Kind.ASSIGN
                pipe.decl.append(n.VariableNode(var.pos, var.line, [var.val]))
                if pipe.is_assign:
                    self.use_var(var)
                else:
                    self.vars.append(var.val)
                return
            if after.kind is Kind.CHAR and after.val == ",":
                self.next_non_space()
                pipe.decl.append(n.VariableNode(var.pos, var.line, [var.val]))
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in (Kind.VARIABLE, Kind.RIGHT_DELIM, Kind.RIGHT_PAREN):
                        continue
                    raise self.error(var.line, "range can only initialize variables")
                raise self.error(var.line, f"too many declarations in {context}")
            self.i = save
            return

    def check_pipeline(self, pipe: n.PipeNode, context: str, item: Item) -> None:
        if not pipe.cmds:
            raise self.error(item.line, f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], n.BoolNode | n.DotNode | n.NilNode | n.NumberNode | n.StringNode):
                raise self.error(item.line, f"non executable command in pipeline stage {i}")

    def command(self) -> n.CommandNode:
        start = self.peek_non_space()
        cmd = n.CommandNode(start.pos, start.line)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            item = self.next()
            if item.kind is Kind.SPACE:
                continue
            if item.kind in (Kind.RIGHT_DELIM, Kind.RIGHT_PAREN):
                self.backup()
            elif item.kind is not Kind.PIPE:
                raise self.unexpected(item, "operand")
            break
        if not cmd.args:
            raise self.error(start.line, "empty command")
        return cmd

    def operand(self) -> n.Node | None:
        node = self.term()
        if node is None or self.peek().kind is not Kind.FIELD:
            return node
        fields: list[str] = []
        pos = self.peek().pos
        while self.peek().kind is Kind.FIELD:
            fields.append(self.next().val[1:])
        if isinstance(node, n.FieldNode):
            return n.FieldNode(pos, node.line, [*node.idents, *fields])
        if isinstance(node, n.VariableNode):
            return n.VariableNode(pos, node.line, [*node.idents, *fields])
        if isinstance(node, n.BoolNode | n.StringNode | n.NumberNode | n.NilNode | n.DotNode):
            raise self.error(node.line, f'unexpected . after term "{node}"')
        return n.ChainNode(pos, node.line, node, fields)

    def use_var(self, item: Item) -> None:
        name = item.val.split(".", 1)[0]
        if name not in self.vars:
            raise self.error(item.line, f'undefined variable "{name}"')

    def term(self) -> n.Node | None:
        item = self.next_non_space()
        kind = item.kind
        if kind is Kind.IDENTIFIER:
            if item.val not in self.funcs:
                raise self.error(item.line, f'function "{item.val}" not defined')
            return n.IdentifierNode(item.pos, item.line, item.val)
        if kind is Kind.DOT:
            return n.DotNode(item.pos, item.line)
        if kind is Kind.NIL:
            return n.NilNode(item.pos, item.line)
        if kind is Kind.VARIABLE:
            self.use_var(item)
            return n.VariableNode(item.pos, item.line, item.val.split("."))
        if kind is Kind.FIELD:
            return n.FieldNode(item.pos, item.line, item.val[1:].split("."))
        if kind is Kind.BOOL:
            return n.BoolNode(item.pos, item.line, item.val == "true")
        if kind is Kind.NUMBER:
            try:
                return n.NumberNode(item.pos, item.line, _number(item.val), item.val)
            except ValueError:
                raise self.error(item.line, f"illegal number syntax: {go_quote(item.val)}") from None
        if kind is Kind.CHAR_CONSTANT:
            try:
                return n.NumberNode(item.pos, item.line, ord(go_unquote(item.val)), item.val)
            except ValueError:
                raise self.error(item.line, f"malformed character constant: {item.val}") from None
        if kind is Kind.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", Kind.RIGHT_PAREN)
        if kind in (Kind.STRING, Kind.RAW_STRING):
            try:
                return n.StringNode(item.pos, item.line, go_unquote(item.val), item.val)
            except ValueError:
                raise self.error(item.line, "invalid syntax") from None
        self.backup()
        return None


_OPERAND_START = frozenset(
    (
        Kind.BOOL,
        Kind.CHAR_CONSTANT,
        Kind.DOT,
        Kind.FIELD,
        Kind.IDENTIFIER,
        Kind.NUMBER,
        Kind.NIL,
        Kind.RAW_STRING,
        Kind.STRING,
        Kind.VARIABLE,
        Kind.LEFT_PAREN,
    )
)


class _End(n.Node):
    def __str__(self) -> str:
        return "{{end}}"


class _Else(n.Node):
    def __init__(self, pos: int, line: int, chained: str) -> None:
        super().__init__(pos, line)
        self.chained = chained

    def __str__(self) -> str:
        return "{{else}}"


def _is_empty(tree: n.ListNode) -> bool:
    return all(isinstance(x, n.TextNode) and not x.text.strip() for x in tree.nodes)


def parse(name: str, text: str, funcs: Container[str], delims: tuple[str, str] = DELIMS) -> dict[str, Tree]:
    """The named trees of ``text``; raises TemplateError with Go's message."""
    try:
        return _Parser(name, text, funcs, delims).parse()
    except RecursionError:
        raise TemplateError(f"template: {name}: actions nested too deeply", name) from None
