"""Go's time formatting (reference-date layouts such as ``2006-01-02T15:04:05Z07:00``) and
consul-template's ``timestamp``, which takes such a layout."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from waypost.template.errors import FuncError

__all__ = ["go_time_format", "timestamp"]

_LAYOUT = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|Z07:00|Z0700|Z07|-07:00|-0700|-07|"
    r"\.0+|\.9+|,0+|,9+|01|02|_2|03|04|05|06|15|PM|pm|1|2|3|4|5"
)


def go_time_format(when: dt.datetime, layout: str) -> str:
    """``time.Time.Format`` with Go's reference-date layouts ("2006-01-02T15:04:05Z07:00")."""

    def zone(colon: bool, z: bool, short: bool = False) -> str:
        offset = when.utcoffset() or dt.timedelta(0)
        if z and offset == dt.timedelta(0):
            return "Z"
        total = int(offset.total_seconds()) // 60
        sign = "-" if total < 0 else "+"
        hours, minutes = divmod(abs(total), 60)
        if short:
            return f"{sign}{hours:02d}"
        return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"

    def token(m: re.Match[str]) -> str:
        t = m.group(0)
        if t[0] in ".," and len(t) > 1:
            digits = f"{when.microsecond:06d}000"[: len(t) - 1]
            if t[1] == "0":
                return t[0] + digits
            digits = digits.rstrip("0")
            return t[0] + digits if digits else ""
        table: dict[str, Callable[[], str]] = {
            "January": lambda: when.strftime("%B"),
            "Jan": lambda: when.strftime("%b"),
            "Monday": lambda: when.strftime("%A"),
            "Mon": lambda: when.strftime("%a"),
            "MST": lambda: when.tzname() or "UTC",
            "2006": lambda: f"{when.year:04d}",
            "06": lambda: f"{when.year % 100:02d}",
            "01": lambda: f"{when.month:02d}",
            "1": lambda: str(when.month),
            "02": lambda: f"{when.day:02d}",
            "_2": lambda: f"{when.day:2d}",
            "2": lambda: str(when.day),
            "15": lambda: f"{when.hour:02d}",
            "03": lambda: f"{(when.hour % 12) or 12:02d}",
            "3": lambda: str((when.hour % 12) or 12),
            "04": lambda: f"{when.minute:02d}",
            "4": lambda: str(when.minute),
            "05": lambda: f"{when.second:02d}",
            "5": lambda: str(when.second),
            "PM": lambda: "PM" if when.hour >= 12 else "AM",
            "pm": lambda: "pm" if when.hour >= 12 else "am",
            "Z07:00": lambda: zone(True, True),
            "Z0700": lambda: zone(False, True),
            "Z07": lambda: zone(False, True, short=True),
            "-07:00": lambda: zone(True, False),
            "-0700": lambda: zone(False, False),
            "-07": lambda: zone(False, False, short=True),
        }
        return table[t]()

    return _LAYOUT.sub(token, layout)


def timestamp(*args: str) -> str:
    now = dt.datetime.now().astimezone()
    if not args:
        return go_time_format(now, "2006-01-02T15:04:05Z07:00")
    if len(args) == 1:
        if args[0] == "unix":
            return str(int(now.timestamp()))
        return go_time_format(now, args[0])
    raise FuncError(f"timestamp: wrong number of arguments, expected 0 or 1, but got {len(args)}")
