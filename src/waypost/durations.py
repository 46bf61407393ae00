"""Go's duration syntax ("300ms", "1m30s", "2h45m"), which every Consul setting uses."""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}  # fmt: skip
_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_MAX_NS = 2**63 - 1
"""Go's Duration is an int64 of nanoseconds; longer spellings are invalid, as in Go."""


def parse_duration(text: str) -> float:
    """Seconds in ``text``, parsed exactly as Go's ``time.ParseDuration``; raises ValueError
    with Go's wording for anything else (no spaces, ASCII digits only, a unit on every
    number, nothing past an int64 of nanoseconds). A bare "0" is allowed, as in Go.
    """
    s = text
    negative = s[:1] == "-"
    if s[:1] in ("+", "-"):
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        assert m is not None
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ValueError(f'time: invalid duration "{text}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        size = _UNITS.get(unit)
        if size is None:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += int(whole or "0") * size + (int(frac) * size // 10 ** len(frac) if frac else 0)
        if total > _MAX_NS + negative:
            raise ValueError(f'time: invalid duration "{text}"')
        pos = m.end()
    return (-total if negative else total) / 1e9


def format_duration(seconds: float) -> str:
    """The shortest Go-style spelling ("10s", "1m30s", "500ms", "0s")."""
    if seconds == 0:
        return "0s"
    ns = round(seconds * 1e9)
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("us", 1_000), ("ns", 1)):
            if ns % size == 0 or unit == "ns":
                return f"{sign}{ns // size}{unit}" if ns % size == 0 else f"{sign}{ns}ns"
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    out = sign
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    secs = rem / 1e9
    out += f"{secs:g}s"
    return out
