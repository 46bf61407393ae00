"""Choosing an upstream for a new connection: round_robin, least_conn, random_two, weighted.

Pure: a balancer sees the candidates (already free of ejected and excluded instances),
the open connections per instance and its own cursor, and draws from the ``random.Random``
it was given, so tests replay a sequence exactly. ``weighted`` is nginx's smooth weighted
round robin over ``Upstream.weight`` (``Weights.Passing`` or ``Weights.Warning``): exact
shares over each cycle, without bursts to the heaviest instance.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from waypost.proxy.upstreams import Upstream

__all__ = ["Balancer", "Key"]

Key = tuple[str, str]


class Balancer:
    def __init__(self, mode: str, rng: random.Random | None = None) -> None:
        self.mode = mode
        self.rng = rng or random.Random()
        self._cursor = 0
        self._current: dict[Key, int] = {}
        self._pick = {
            "round_robin": self._round_robin,
            "least_conn": self._least_conn,
            "random_two": self._random_two,
            "weighted": self._weighted,
        }[mode]

    def pick(self, candidates: Sequence[Upstream], active: Mapping[Key, int]) -> Upstream | None:
        """The instance for the next connection; None when there is none to choose."""
        if not candidates:
            return None
        return self._pick(candidates, active)

    def _round_robin(self, candidates: Sequence[Upstream], active: Mapping[Key, int]) -> Upstream:
        self._cursor += 1
        return candidates[(self._cursor - 1) % len(candidates)]

    def _least_conn(self, candidates: Sequence[Upstream], active: Mapping[Key, int]) -> Upstream:
        # Rotate the starting point so ties spread over the instances instead of the first one.
        start = self._cursor % len(candidates)
        self._cursor += 1
        order = [*candidates[start:], *candidates[:start]]
        return min(order, key=lambda u: active.get(u.key, 0))

    def _random_two(self, candidates: Sequence[Upstream], active: Mapping[Key, int]) -> Upstream:
        if len(candidates) == 1:
            return candidates[0]
        a, b = self.rng.sample(range(len(candidates)), 2)
        first, second = candidates[a], candidates[b]
        return second if active.get(second.key, 0) < active.get(first.key, 0) else first

    def _weighted(self, candidates: Sequence[Upstream], active: Mapping[Key, int]) -> Upstream:
        total = 0
        best: Upstream | None = None
        current = self._current
        present = {u.key for u in candidates}
        for key in [k for k in current if k not in present]:
            del current[key]
        for up in candidates:
            current[up.key] = current.get(up.key, 0) + up.weight
            total += up.weight
            if best is None or current[up.key] > current[best.key]:
                best = up
        assert best is not None
        current[best.key] -= total
        return best
