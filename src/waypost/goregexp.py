"""Go's regular expressions, for ``?filter=`` ``matches`` and prepared query templates.

Go's regexp is RE2, so RE2 itself gives the same syntax, the same refusals (no
backreferences, no lookarounds) and linear-time matching. Its bindings cost an agent
2.5 MiB of RSS (measured in a client agent), so they load with the first pattern compiled
rather than at start-up.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import re2  # type: ignore[import-untyped]
else:
    from waypost.lazy_imports import re2

__all__ = ["RegexpError", "compile_regexp"]


class RegexpError(ValueError):
    """A pattern RE2 refuses; the message is RE2's reason, as Go's regexp words it."""


@functools.cache
def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    return options


def compile_regexp(raw: str) -> Any:
    """``raw`` compiled; raises RegexpError."""
    try:
        return re2.compile(raw, _options())
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if isinstance(exc.args[0], bytes) else str(exc)
        raise RegexpError(reason) from None
