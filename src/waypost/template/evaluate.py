"""Go's ``text/template`` execution over Python values: truthiness, fields, variables,
pipelines and Go's builtins, with Go's error messages and positions.

Values stand for Go's: str/int/float/bool/None, lists for slices, dicts for
``map[string]interface{}`` (``StringMap`` for ``map[string]string``, whose missing keys are
"" rather than ``<no value>``), dataclasses for structs (a ``GO_TYPE`` class attribute
names them), and methods with Go names for Go methods (``scratch.Get "k"``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from waypost.template import nodes as n
from waypost.template.builtins import BUILTINS, LAZY, is_true
from waypost.template.errors import FuncError, TemplateError
from waypost.template.gofmt import NO_VALUE, StringMap, go_str, go_type
from waypost.template.lexer import DELIMS
from waypost.template.parser import parse

__all__ = ["Template"]

MAX_DEPTH = 1000


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ExecError(Exception):
    def __init__(self, message: str, node: n.Node | None = None) -> None:
        super().__init__(message)
        self.node = node


@dataclasses.dataclass(frozen=True, slots=True)
class _Signature:
    required: int
    maximum: int | None
    types: tuple[str, ...]


def _signature(fn: Callable[..., Any]) -> _Signature:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return _Signature(0, None, ())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
    required = sum(1 for p in positional if p.default is p.empty)
    types = tuple(str(p.annotation) if p.annotation is not p.empty else "" for p in positional)
    return _Signature(required, None if variadic else len(positional), types)


_GO_NAMES = {"str": "string", "int": "int", "bool": "bool", "float": "float64"}


_LITERAL_WANT = {"string": "string", "int": "integer", "bool": "bool", "float64": "float"}


def _check_args(name: str, sig: _Signature, args: list[Any], nodes: list[n.Node | None], at: n.Node) -> None:
    """Go's checks of a call against the function's signature: the count, then each
    argument's type (a literal is named as written, as Go's parser-typed constants are)."""
    if len(args) < sig.required or (sig.maximum is not None and len(args) > sig.maximum):
        want = f"at least {sig.required}" if sig.maximum is None else str(sig.maximum)
        raise _ExecError(f"wrong number of args for {name}: want {want} got {len(args)}", at)
    for value, kind, node in zip(args, sig.types, nodes, strict=False):
        go = _GO_NAMES.get(kind)
        if go is None:
            continue
        ok = {
            "string": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "float64": isinstance(value, int | float) and not isinstance(value, bool),
        }[go]
        if ok:
            continue
        if isinstance(node, n.NilNode):
            raise _ExecError(f"cannot assign nil to {go}", node)
        if isinstance(node, n.BoolNode | n.NumberNode | n.StringNode):
            raise _ExecError(f"expected {_LITERAL_WANT[go]}; found {node}", node)
        raise _ExecError(f"wrong type for value; expected {go}; got {go_type(value)}", at)


class Template:
    """A parsed template file and its named sub-templates, executable over any data."""

    def __init__(
        self,
        name: str,
        text: str,
        funcs: Mapping[str, Callable[..., Any]] | None = None,
        delims: tuple[str, str] = DELIMS,
    ) -> None:
        self.name = name
        self.text = text
        self.funcs: dict[str, Callable[..., Any]] = {**BUILTINS, **(funcs or {})}
        self._sigs = {k: _signature(f) for k, f in self.funcs.items() if k not in LAZY}
        self.trees = parse(name, text, self.funcs, delims)
        self.missing_key_error = False

    def execute(self, data: Any, name: str | None = None) -> str:
        """Render tree ``name`` (the file by default); raises TemplateError as Go words it."""
        tree_name = name or self.name
        tree = self.trees.get(tree_name)
        if tree is None:
            raise TemplateError(f'template: no template "{tree_name}" associated with template "{self.name}"')
        dot = NO_VALUE if data is None else data  # Go's invalid Value: fields of it read as no value
        state = _State(self, tree_name, dot)
        try:
            state.walk(dot, tree)
        except _ExecError as err:
            raise self._located(state.current, err) from None
        except RecursionError:
            raise TemplateError(f"template: {self.name}: exceeded maximum template depth") from None
        return "".join(state.out)

    def _located(self, tree_name: str, err: _ExecError) -> TemplateError:
        if err.node is None:
            return TemplateError(f'template: {tree_name}: executing "{tree_name}": {err}', self.name)
        before = self.text[: err.node.pos]
        line = before.count("\n") + 1
        col = err.node.pos - (before.rfind("\n") + 1)
        context = str(err.node)
        message = f'template: {self.name}:{line}:{col}: executing "{tree_name}" at <{context}>: {err}'
        return TemplateError(message, self.name, line, col)


class _State:
    def __init__(self, tmpl: Template, tree_name: str, data: Any) -> None:
        self.tmpl = tmpl
        self.current = tree_name
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.depth = 0
        self.node: n.Node | None = None

    def error(self, message: str) -> _ExecError:
        return _ExecError(message, self.node)

    # -- statements ------------------------------------------------------------------
    def walk(self, dot: Any, node: n.Node) -> None:
        self.node = node
        if isinstance(node, n.ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, n.TextNode):
            self.out.append(node.text)
        elif isinstance(node, n.ActionNode):
            assert node.pipe is not None
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.out.append(self.printable(value))
        elif isinstance(node, n.IfNode | n.WithNode):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, n.RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, n.TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, n.BreakNode):
            raise _Break
        elif isinstance(node, n.ContinueNode):
            raise _Continue
        else:
            raise self.error(f"unknown node: {node}")

    def printable(self, value: Any) -> str:
        if callable(value) and not isinstance(value, type):
            raise self.error(f"can't print {go_type(value)} of type func")
        return go_str(value, indirect=True)

    def walk_if_or_with(self, dot: Any, node: n.BranchNode) -> None:
        mark = len(self.vars)
        assert node.pipe is not None
        assert node.body is not None
        value = self.eval_pipeline(dot, node.pipe)
        try:
            if is_true(value):
                self.walk(value if isinstance(node, n.WithNode) else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: n.RangeNode) -> None:
        mark = len(self.vars)
        assert node.pipe is not None
        assert node.body is not None
        value = self.eval_pipeline(dot, node.pipe)
        decl = node.pipe.decl
        ran = False
        try:
            for key, elem in self.iterate(value):
                ran = True
                if decl:
                    names = [d.idents[0] for d in decl]
                    if len(names) == 1:
                        self.set_var(names[0], elem)
                    else:
                        self.set_var(names[0], key)
                        self.set_var(names[1], elem)
                inner = len(self.vars)
                try:
                    self.walk(elem, node.body)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    del self.vars[inner:]
            if not ran and node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def iterate(self, value: Any) -> Iterator[tuple[Any, Any]]:
        if value is None or value is NO_VALUE:
            return iter(())
        if isinstance(value, dict):
            return ((k, value[k]) for k in sorted(value))
        if isinstance(value, list | tuple):
            return enumerate(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return ((i, i) for i in range(value))
        raise self.error(f"range can't iterate over {go_str(value)}")

    def walk_template(self, dot: Any, node: n.TemplateNode) -> None:
        tree = self.tmpl.trees.get(node.name)
        if tree is None:
            raise self.error(f'template "{node.name}" not defined')
        value = dot if node.pipe is None else self.eval_pipeline(dot, node.pipe)
        self.depth += 1
        if self.depth >= MAX_DEPTH:
            raise self.error(f"exceeded maximum template depth ({MAX_DEPTH})")
        saved_vars, saved_name = self.vars, self.current
        self.vars = [("$", value)]
        self.current = node.name
        try:
            self.walk(value, tree)
        finally:
            self.vars, self.current = saved_vars, saved_name
            self.depth -= 1

    # -- variables -------------------------------------------------------------------
    def set_var(self, name: str, value: Any) -> None:
        self.vars.append((name, value))

    def assign_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.error(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for key, value in reversed(self.vars):
            if key == name:
                return value
        raise self.error(f"undefined variable: {name}")

    # -- pipelines -------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: n.PipeNode) -> Any:
        value: Any = _NONE
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.assign_var(var.idents[0], value)
            else:
                self.set_var(var.idents[0], value)
        # Go turns a pipeline's nil interface into "no value" (printed as <no value>).
        return NO_VALUE if value is _NONE or value is None else value

    def eval_command(self, dot: Any, cmd: n.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        self.node = first
        if isinstance(first, n.FieldNode):
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, n.ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, n.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, n.PipeNode):
            self.not_function(cmd.args, final)
            mark = len(self.vars)
            try:
                return self.eval_pipeline(dot, first)
            finally:
                del self.vars[mark:]
        if isinstance(first, n.VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.not_function(cmd.args, final)
        return dot if isinstance(first, n.DotNode) else self.eval_literal(first)

    def not_function(self, args: list[n.Node], final: Any) -> None:
        if len(args) > 1 or final is not _NONE:
            raise self.error(f"can't give argument to non-function {args[0]}")

    def eval_literal(self, node: n.Node) -> Any:
        if isinstance(node, n.BoolNode):
            return node.value
        if isinstance(node, n.NilNode):
            raise self.error("nil is not a command")
        if isinstance(node, n.NumberNode):
            return node.value
        if isinstance(node, n.StringNode):
            return node.value
        raise self.error(f"can't evaluate command {node}")

    def eval_arg(self, dot: Any, node: n.Node) -> Any:
        self.node = node
        if isinstance(node, n.DotNode):
            return dot
        if isinstance(node, n.NilNode):
            return None
        if isinstance(node, n.FieldNode):
            return self.eval_field_chain(dot, dot, node, node.idents, [node], _NONE)
        if isinstance(node, n.VariableNode):
            return self.eval_variable(dot, node, [node], _NONE)
        if isinstance(node, n.PipeNode):
            mark = len(self.vars)
            try:
                return self.eval_pipeline(dot, node)
            finally:
                del self.vars[mark:]
        if isinstance(node, n.IdentifierNode):
            return self.eval_function(dot, node, node, [node], _NONE)
        if isinstance(node, n.ChainNode):
            return self.eval_chain(dot, node, [node], _NONE)
        return self.eval_literal(node)

    def eval_variable(self, dot: Any, var: n.VariableNode, args: list[n.Node], final: Any) -> Any:
        value = self.var_value(var.idents[0])
        if len(var.idents) == 1:
            self.not_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.idents[1:], args, final)

    def eval_chain(self, dot: Any, chain: n.ChainNode, args: list[n.Node], final: Any) -> Any:
        assert chain.node is not None
        receiver = self.eval_arg(dot, chain.node)
        self.node = chain
        return self.eval_field_chain(dot, receiver, chain, chain.fields, args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: n.Node, idents: list[str], args: list[n.Node], final: Any
    ) -> Any:
        untyped = False
        for ident in idents[:-1]:
            untyped = isinstance(receiver, dict) and not isinstance(receiver, StringMap)
            receiver = self.eval_field(dot, ident, node, [], _NONE, receiver)
        return self.eval_field(dot, idents[-1], node, args, final, receiver, untyped)

    def eval_field(
        self,
        dot: Any,
        name: str,
        node: n.Node,
        args: list[n.Node],
        final: Any,
        receiver: Any,
        untyped: bool = False,
    ) -> Any:
        """``untyped``: the receiver came out of a ``map[string]interface{}``, so Go's
        messages call its type ``interface {}`` whatever the value."""
        self.node = node
        if receiver is NO_VALUE:
            if self.tmpl.missing_key_error:
                raise self.error(f'nil data; no entry for key "{name}"')
            return NO_VALUE
        has_args = len(args) > 1 or final is not _NONE
        if receiver is not None and not isinstance(receiver, dict):
            method = getattr(receiver, name, None)
            is_field = name in _field_names(type(receiver))
            if callable(method) and not is_field and name[:1].isupper():
                return self.call(dot, name, method, node, args, final)
            if is_field:
                if has_args:
                    raise self.error(f"{name} has arguments but cannot be invoked as function")
                return getattr(receiver, name)
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.tmpl.missing_key_error:
                raise self.error(f'map has no entry for key "{name}"')
            return "" if isinstance(receiver, StringMap) else NO_VALUE
        if receiver is None:
            raise self.error(f"nil pointer evaluating interface {{}}.{name}")
        kind = "interface {}" if untyped else go_type(receiver)
        raise self.error(f"can't evaluate field {name} in type {kind}")

    def eval_function(
        self, dot: Any, ident: n.IdentifierNode, node: n.Node, args: list[n.Node], final: Any
    ) -> Any:
        name = ident.name
        fn = self.tmpl.funcs.get(name)
        if fn is None:
            raise self.error(f'"{name}" is not a defined function')
        if name in LAZY:
            return self.eval_lazy(dot, name, args, final)
        if name == "call" and len(args) > 1:
            target = self.eval_arg(dot, args[1])
            if not callable(target):
                self.node = node
                raise self.error(f"error calling call: non-function {args[1]} of type {go_type(target)}")
        return self.call(dot, name, fn, node, args, final)

    def eval_lazy(self, dot: Any, name: str, args: list[n.Node], final: Any) -> Any:
        """``and``/``or`` stop at the first argument that decides, as in Go 1.18+."""
        operands: list[Any] = [lambda node=a: self.eval_arg(dot, node) for a in args[1:]]
        if final is not _NONE:
            operands.append(lambda: final)
        if not operands:
            raise self.error(f"wrong number of args for {name}: want at least 1 got 0")
        value: Any = None
        for thunk in operands:
            value = thunk()
            if is_true(value) != (name == "and"):
                return value
        return value

    def call(
        self, dot: Any, name: str, fn: Callable[..., Any], node: n.Node, args: list[n.Node], final: Any
    ) -> Any:
        values = [self.eval_arg(dot, a) for a in args[1:]]
        if final is not _NONE:
            values.append(final)
        values = [None if v is NO_VALUE else v for v in values]
        self.node = node
        sig = self.tmpl._sigs.get(name) if self.tmpl.funcs.get(name) is fn else None
        _check_args(name, sig or _signature(fn), values, [*args[1:], None], node)
        try:
            return fn(*values)
        except (_Break, _Continue, _ExecError):
            raise
        except TemplateError as err:
            raise _ExecError(f"error calling {name}: {err}", node) from None
        except (
            FuncError,
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            AttributeError,
            ArithmeticError,
            OSError,
        ) as err:
            raise _ExecError(f"error calling {name}: {_message(err)}", node) from None


_FIELDS: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    """A struct's fields (a dataclass's), as opposed to its methods; looked up per type once."""
    names = _FIELDS.get(cls)
    if names is None:
        fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()
        names = _FIELDS[cls] = frozenset(f.name for f in fields)
    return names


def _message(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    if isinstance(err, OSError) and err.strerror:
        return f"open {err.filename}: {err.strerror.lower()}" if err.filename else err.strerror.lower()
    return str(err)


_NONE: Any = object()
