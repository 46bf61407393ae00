"""How often an agent talks to the servers unprompted, as the cluster grows.

Heartbeats and anti-entropy are per-node requests, so with fixed intervals the servers'
load grows with the cluster. Consul keeps it near flat by stretching its anti-entropy
interval by a factor that grows with log2 of the cluster size past 128 nodes; waypost
stretches the default heartbeat the same way. A node's failure deadline is the TTL of its
own liveness lease, so each node's deadline follows the interval that node actually
uses, whatever the others (or the leader) use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from waypost.config.model import Liveness

__all__ = ["MISSED_HEARTBEATS", "SCALE_THRESHOLD", "Pace", "ae_wait", "liveness_pace", "scale_factor"]

SCALE_THRESHOLD = 128
"""Up to this many members the intervals are as configured (Consul's ``scaleThreshold``)."""

MISSED_HEARTBEATS = 3
"""A node's deadline is never shorter than this many of its heartbeat intervals, so that a
stretched (or long configured) interval cannot outlast ``failure_timeout``."""


def scale_factor(members: int) -> int:
    """1 up to 128 members, then one more each time the cluster doubles (Consul's
    ``ae.scaleFactor``): 200 -> 2, 1,000 -> 4, 10,000 -> 8."""
    if members <= SCALE_THRESHOLD:
        return 1
    return math.ceil(math.log2(members) - math.log2(SCALE_THRESHOLD)) + 1


@dataclass(frozen=True, slots=True)
class Pace:
    """Seconds between heartbeats, and the TTL of the liveness lease they renew."""

    interval: float
    deadline: float


def liveness_pace(config: Liveness, members: int) -> Pace:
    """The default interval is stretched by the cluster's scale factor; one set in the
    configuration is kept as set. The deadline is ``failure_timeout``, or
    ``MISSED_HEARTBEATS`` intervals when that is longer."""
    interval = config.heartbeat_interval.seconds
    if config.heartbeat_scaled:
        interval *= scale_factor(members)
    return Pace(interval, max(config.failure_timeout.seconds, MISSED_HEARTBEATS * interval))


def ae_wait(interval: float, members: int, fraction: float) -> float:
    """Seconds to the next full anti-entropy sync: ``interval`` plus a random stagger of up
    to ``interval`` times the scale factor (``fraction`` in [0, 1)), as Consul's
    StateSyncer waits, so that a large cluster's agents neither sync often nor together."""
    return interval + fraction * interval * scale_factor(members)
