"""Passive ejection with an injected clock: N failures in a row, back-off, and clearing."""

from __future__ import annotations

from waypost.proxy.config import OutlierConfig
from waypost.proxy.outlier import OutlierDetector

KEY = ("node", "web-1")


def test_n_consecutive_failures_eject_for_a_growing_period() -> None:
    now = [100.0]
    det = OutlierDetector(OutlierConfig(consecutive_failures=3, ejection=10), clock=lambda: now[0])
    assert [det.failure(KEY) for _ in range(3)] == [False, False, True]
    assert det.ejected(KEY)
    now[0] += 10.5
    assert not det.ejected(KEY)
    assert [det.failure(KEY) for _ in range(3)] == [False, False, True]
    now[0] += 15
    assert det.ejected(KEY)  # the second ejection in a row lasts 20s
    now[0] += 6
    assert not det.ejected(KEY)


def test_a_success_clears_the_count_and_retain_forgets_departed_instances() -> None:
    det = OutlierDetector(OutlierConfig(consecutive_failures=2, ejection=10), clock=lambda: 0.0)
    det.failure(KEY)
    det.success(KEY)
    assert not det.failure(KEY)
    det.retain([])
    assert not det.failure(KEY)
    assert det.failure(KEY)
