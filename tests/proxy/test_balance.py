"""The balance modes, pure: exact sequences from a seeded rng and given open connections."""

from __future__ import annotations

import random
from collections import Counter

from waypost.proxy.balance import Balancer
from waypost.proxy.upstreams import Upstream


def _ups(*weights: int) -> list[Upstream]:
    return [Upstream("127.0.0.1", 1000 + i, w, "n", f"s{i}") for i, w in enumerate(weights)]


def _names(
    balancer: Balancer, ups: list[Upstream], count: int, active: dict[tuple[str, str], int]
) -> list[str]:
    out = []
    for _ in range(count):
        up = balancer.pick(ups, active)
        assert up is not None
        out.append(up.service_id)
    return out


def test_round_robin_cycles_in_order() -> None:
    assert _names(Balancer("round_robin"), _ups(1, 1, 1), 6, {}) == ["s0", "s1", "s2", "s0", "s1", "s2"]


def test_weighted_is_smooth_and_exact_per_cycle() -> None:
    ups = _ups(5, 1, 1)
    names = _names(Balancer("weighted"), ups, 7, {})
    assert names == ["s0", "s0", "s1", "s0", "s2", "s0", "s0"]  # nginx's smooth sequence for 5:1:1
    assert Counter(_names(Balancer("weighted"), ups, 700, {})) == {"s0": 500, "s1": 100, "s2": 100}


def test_weighted_forgets_instances_that_left() -> None:
    balancer = Balancer("weighted")
    _names(balancer, _ups(3, 1), 3, {})
    assert Counter(_names(balancer, _ups(3, 1)[1:], 4, {})) == {"s1": 4}


def test_least_conn_prefers_the_idlest_and_rotates_ties() -> None:
    ups = _ups(1, 1, 1)
    assert (
        _names(Balancer("least_conn"), ups, 3, {("n", "s0"): 2, ("n", "s1"): 0, ("n", "s2"): 1}) == ["s1"] * 3
    )
    assert sorted(_names(Balancer("least_conn"), ups, 3, {})) == ["s0", "s1", "s2"]


def test_random_two_takes_the_less_loaded_of_two_draws() -> None:
    ups = _ups(1, 1, 1)
    busy = {("n", "s0"): 9, ("n", "s1"): 9, ("n", "s2"): 0}
    picks = _names(Balancer("random_two", random.Random(3)), ups, 200, busy)
    # s2 loses only when the two draws are s0 and s1: about a third of the time.
    assert 100 < picks.count("s2") < 170
    assert _names(Balancer("random_two", random.Random(1)), ups, 20, {}) == _names(
        Balancer("random_two", random.Random(1)), ups, 20, {}
    )


def test_nothing_to_choose() -> None:
    assert Balancer("weighted").pick([], {}) is None
    assert _names(Balancer("random_two"), _ups(1), 2, {}) == ["s0", "s0"]
