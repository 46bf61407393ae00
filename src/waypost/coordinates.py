"""Serf's network coordinates: the round-trip estimate between two of them.

The arithmetic follows serf's ``Coordinate.DistanceTo`` to the nanosecond (Go truncates the
distance to a ``time.Duration``), so ``waypost rtt`` prints the digits ``consul rtt`` does and
prepared queries sort by ``Near`` as Consul's do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["Coord", "CoordinateError", "distance"]

Coord = Mapping[str, Any]

_NS_PER_SECOND = 1_000_000_000
#: What Go's float-to-int64 conversion gives on amd64 for a value out of range.
_INT64_MIN = -(2**63)


class CoordinateError(ValueError):
    """Coordinates that cannot be compared (serf panics on these; we report them)."""


def _vector(coord: Coord) -> list[float]:
    vec = coord.get("Vec")
    if not isinstance(vec, list) or not all(isinstance(v, int | float) for v in vec):
        raise CoordinateError("coordinate has no numeric Vec")
    return [float(v) for v in vec]


def _scalar(coord: Coord, name: str) -> float:
    value = coord.get(name, 0.0)
    if not isinstance(value, int | float):
        raise CoordinateError(f"coordinate {name} is not a number")
    return float(value)


def distance(a: Coord, b: Coord) -> float:
    """Seconds between two coordinates, as serf's ``DistanceTo(...).Seconds()`` computes them:
    the Euclidean distance of the vectors plus both heights, plus both adjustments when that
    sum stays positive, truncated to whole nanoseconds."""
    va, vb = _vector(a), _vector(b)
    if len(va) != len(vb):
        raise CoordinateError("coordinate dimensionality does not match")
    dist = math.sqrt(sum((x - y) ** 2 for x, y in zip(va, vb, strict=True)))
    dist += _scalar(a, "Height") + _scalar(b, "Height")
    adjusted = dist + _scalar(a, "Adjustment") + _scalar(b, "Adjustment")
    if adjusted > 0.0:
        dist = adjusted
    scaled = dist * _NS_PER_SECOND
    nanos = int(scaled) if math.isfinite(scaled) and abs(scaled) < 2**63 else _INT64_MIN
    whole = abs(nanos) // _NS_PER_SECOND * (1 if nanos >= 0 else -1)
    return float(whole) + float(nanos - whole * _NS_PER_SECOND) / 1e9
