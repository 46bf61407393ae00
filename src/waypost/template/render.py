"""One template against one brain: the sans-I/O heart of ``waypost template``.

Rendering is consul-template's multi-phase execution: a pass records every dependency
it used and those it has no data for yet (a ``key`` reads "" meanwhile); the caller
fetches the missing ones and renders again until nothing is missing. Nothing is written
here: ``writeToFile`` outputs are returned with the text, for the runner to write only
when the whole render succeeded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from waypost.gostrconv import num_error
from waypost.template.deps import Dependency, parse_dependency
from waypost.template.errors import FuncError, MissingDependency, TemplateError
from waypost.template.evaluate import Template
from waypost.template.funcs import HELPERS, Scratch
from waypost.template.lexer import DELIMS
from waypost.template.values import KeyPair

__all__ = ["Brain", "CompiledTemplate", "FileWrite", "RenderResult"]

Brain = Mapping[Dependency, Any]
"""Data received so far, by dependency; a dependency absent from it has no data yet."""


@dataclass(frozen=True, slots=True)
class FileWrite:
    """A ``writeToFile`` call: applied by the runner after a successful render."""

    path: str
    user: str
    group: str
    perms: int
    content: str
    append: bool = False


@dataclass(slots=True)
class RenderResult:
    output: str
    used: set[Dependency] = field(default_factory=set)
    missing: set[Dependency] = field(default_factory=set)
    files: list[FileWrite] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


class _Pass:
    """The per-render state that the bound template functions write into."""

    def __init__(self, brain: Brain) -> None:
        self.brain = brain
        self.used: set[Dependency] = set()
        self.missing: set[Dependency] = set()
        self.files: list[FileWrite] = []
        self.scratch = Scratch()


class CompiledTemplate:
    """A template parsed once, rendered many times (``render(brain)``).

    ``err_on_failed_lookup``: a ``key`` whose data arrived and says "absent" fails the
    render naming the key, instead of waiting for it (consul-template's flag of that
    name). ``missing_key_error``: a missing map field fails instead of printing
    ``<no value>`` (consul-template's ``error_on_missing_key``).
    """

    def __init__(
        self,
        name: str,
        text: str,
        *,
        err_on_failed_lookup: bool = False,
        missing_key_error: bool = False,
        delims: tuple[str, str] = DELIMS,
    ) -> None:
        self.name = name
        self.err_on_failed_lookup = err_on_failed_lookup
        self._pass = _Pass({})
        funcs: dict[str, Callable[..., Any]] = {**HELPERS, **self._api_funcs()}
        self.template = Template(name, text, funcs, delims)
        self.template.missing_key_error = missing_key_error

    def render(self, brain: Brain) -> RenderResult:
        """The text and the dependencies seen; raises TemplateError (Go's wording)."""
        self._pass = state = _Pass(brain)
        output = self.template.execute(None)
        return RenderResult(output, state.used, state.missing, state.files)

    # -- functions that read the brain ----------------------------------------------
    def _lookup(self, kind: str, spec: str) -> tuple[Dependency, bool, Any]:
        dep = parse_dependency(kind, spec)
        state = self._pass
        state.used.add(dep)
        if dep in state.brain:
            return dep, True, state.brain[dep]
        state.missing.add(dep)
        return dep, False, None

    def _api_funcs(self) -> dict[str, Callable[..., Any]]:
        def key(spec: str) -> str:
            if not spec:
                return ""
            dep, known, value = self._lookup("kv.get", spec)
            if known and value is None:
                if self.err_on_failed_lookup:
                    raise MissingDependency(f'key "{dep.name}" does not exist (err_on_failed_lookup)')
                self._pass.missing.add(dep)
            return "" if value is None else str(value)

        def key_exists(spec: str) -> bool:
            if not spec:
                return False
            _, _, value = self._lookup("kv.get", spec)
            return value is not None

        def key_or_default(spec: str, default: str) -> str:
            if not spec:
                return default
            _, _, value = self._lookup("kv.get", spec)
            return default if not value else str(value)

        def listing(top_level_only: bool, safe: bool) -> Callable[[str], list[KeyPair]]:
            def fn(spec: str) -> list[KeyPair]:
                if not spec:
                    return []
                dep, known, value = self._lookup("kv.list", spec)
                if top_level_only:
                    pairs = [p for p in value or [] if p.Key and "/" not in p.Key]
                else:
                    pairs = [p for p in value or [] if p.Key.rpartition("/")[2]]
                if known and not pairs and safe:
                    self._pass.missing.add(dep)
                return pairs

            return fn

        def service(*parts: str) -> list[Any]:
            spec = "".join(parts)
            if not spec:
                raise FuncError('health.service: invalid format: ""')
            _, _, value = self._lookup("health.service", spec)
            return list(value or [])

        def services(*parts: str) -> list[Any]:
            _, _, value = self._lookup("catalog.services", "".join(parts))
            return list(value or [])

        def node(*parts: str) -> Any:
            _, _, value = self._lookup("catalog.node", "".join(parts))
            return value

        def nodes(*parts: str) -> list[Any]:
            _, _, value = self._lookup("catalog.nodes", "".join(parts))
            return list(value or [])

        def datacenters(*ignore_inaccessible: bool) -> list[str]:
            _, _, value = self._lookup("catalog.datacenters", "")
            return list(value or [])

        def file(path: str) -> str:
            if not path:
                return ""
            _, _, value = self._lookup("file", path)
            return "" if value is None else str(value)

        def write_to_file(path: str, user: str, group: str, perms: str, *args: str) -> str:
            if not args or len(args) > 2:
                raise FuncError(f"wrong number of args for writeToFile: want 5 or 6 got {4 + len(args)}")
            flags = args[0] if len(args) == 2 else ""
            try:
                mode = int(perms, 8)
            except ValueError:
                raise FuncError(num_error("ParseUint", perms)) from None
            content = args[-1] + ("\n" if "newline" in flags else "")
            self._pass.files.append(
                FileWrite(os.path.normpath(path), user, group, mode, content, "append" in flags)
            )
            return ""

        def execute_template(name: str, *data: Any) -> str:
            if len(data) > 1:
                raise FuncError(
                    f"executeTemplate: wrong number of arguments, expected 1 or 2, but got {1 + len(data)}"
                )
            try:
                return self.template.execute(data[0] if data else None, name)
            except TemplateError as err:
                raise FuncError(str(err)) from None

        return {
            "key": key,
            "keyExists": key_exists,
            "keyOrDefault": key_or_default,
            "ls": listing(True, False),
            "safeLs": listing(True, True),
            "tree": listing(False, False),
            "safeTree": listing(False, True),
            "service": service,
            "services": services,
            "node": node,
            "nodes": nodes,
            "datacenters": datacenters,
            "file": file,
            "writeToFile": write_to_file,
            "executeTemplate": execute_template,
            "scratch": lambda: self._pass.scratch,
        }
