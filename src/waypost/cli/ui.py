"""Output as Consul's commands lay it out, so that scripts parsing ``consul`` output keep working."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

__all__ = ["columnize", "error", "go_json", "output", "tabwrite"]


def output(text: str = "") -> None:
    print(text, flush=True)


def error(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def columnize(rows: Sequence[Sequence[str]]) -> str:
    """ryanuber/columnize's default: left-aligned columns joined by two spaces, no trailing blanks."""
    if not rows:
        return ""
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(max(len(r) for r in rows))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines)


def tabwrite(rows: Sequence[Sequence[str]], padding: int = 6) -> str:
    """Go's tabwriter as Consul configures it (min width 0, padding 6): every cell but the last padded."""
    if not rows:
        return ""
    columns = max(len(r) for r in rows)
    widths = [max((len(r[i]) for r in rows if i < len(r) - 1), default=0) + padding for i in range(columns)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("".join(cells))
    return "\n".join(lines)


def go_json(value: object, indent: int | None = None) -> str:
    """JSON as Go's encoding/json writes it (HTML characters escaped), so output matches Consul's."""
    text = json.dumps(value, indent=indent, ensure_ascii=False, separators=None if indent else (",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
