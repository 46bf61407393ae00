"""The errors a template can raise, carrying where (file, line, column) for the CLI's message."""

from __future__ import annotations

__all__ = ["FuncError", "MissingDependency", "TemplateError"]


class TemplateError(Exception):
    """A parse or execution error, its text already in Go's ``template: name:line:...`` form."""

    def __init__(self, message: str, name: str = "", line: int = 0, column: int | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.line = line
        self.column = column


class MissingDependency(TemplateError):
    """A lookup with no data, raised only when the template asked to fail on failed lookups."""


class FuncError(Exception):
    """Raised by a template function; printed as Go's ``error calling NAME: ...``."""
