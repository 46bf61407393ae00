"""Heartbeat and anti-entropy pacing by cluster size, against Consul's ae scale factor."""

from __future__ import annotations

import dataclasses

import pytest

from waypost.agent.pacing import ae_wait, liveness_pace, scale_factor
from waypost.config.model import Duration, Liveness


@pytest.mark.parametrize(
    ("members", "factor"),
    [(0, 1), (1, 1), (100, 1), (128, 1), (129, 2), (200, 2), (256, 2), (257, 3), (1000, 4),
     (5000, 7), (8192, 7), (10000, 8), (50000, 10)],
)  # fmt: skip
def test_scale_factor_matches_consul(members: int, factor: int) -> None:
    assert scale_factor(members) == factor


@pytest.mark.parametrize(
    ("members", "interval", "deadline"),
    [(3, 1.0, 10.0), (128, 1.0, 10.0), (200, 2.0, 10.0), (1000, 4.0, 12.0), (5000, 7.0, 21.0),
     (10000, 8.0, 24.0), (50000, 10.0, 30.0)],
)  # fmt: skip
def test_the_default_heartbeat_scales_and_the_deadline_follows(
    members: int, interval: float, deadline: float
) -> None:
    pace = liveness_pace(Liveness(), members)
    assert (pace.interval, pace.deadline) == (interval, deadline)


def test_a_configured_heartbeat_is_kept_and_its_deadline_covers_missed_beats() -> None:
    configured = Liveness(
        heartbeat_interval=Duration("4s"), failure_timeout=Duration("2s"), heartbeat_scaled=False
    )
    for members in (1, 1000, 50000):
        pace = liveness_pace(configured, members)
        assert (pace.interval, pace.deadline) == (4.0, 12.0)
    short = dataclasses.replace(configured, heartbeat_interval=Duration("200ms"))
    assert liveness_pace(short, 50000).deadline == 2.0


@pytest.mark.parametrize(("members", "longest"), [(1, 120.0), (200, 180.0), (1000, 300.0), (10000, 540.0)])
def test_anti_entropy_waits_the_interval_plus_a_scaled_stagger(members: int, longest: float) -> None:
    assert ae_wait(60.0, members, 0.0) == 60.0
    assert ae_wait(60.0, members, 1.0) == longest
    assert ae_wait(60.0, members, 0.5) == (60.0 + longest) / 2
