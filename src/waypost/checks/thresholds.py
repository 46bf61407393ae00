"""Consul's StatusHandler: flapping targets must fail (or pass) N times in a row to count.

Kept apart from the scheduler so the counting rules, which users tune and file bugs
about, can be read and tested on their own.
"""

from __future__ import annotations

from waypost.checks.base import CheckResult
from waypost.state.model import CheckStatus

__all__ = ["Thresholds"]


class Thresholds:
    """Counts consecutive results; :meth:`apply` says what, if anything, to report.

    Counters start at their thresholds, as in Consul, so the very first result is
    reported at once instead of leaving a new check in its initial status.
    A warning result counts as a success, as Consul counts it.
    """

    __slots__ = ("_failures", "_successes", "before_critical", "before_passing", "before_warning")

    def __init__(
        self, success_before_passing: int, failures_before_warning: int, failures_before_critical: int
    ):
        self.before_passing = success_before_passing
        self.before_critical = failures_before_critical
        self.before_warning = failures_before_warning or failures_before_critical
        self._successes = success_before_passing
        self._failures = failures_before_critical

    def apply(self, result: CheckResult) -> CheckResult | None:
        if result.status in (CheckStatus.PASSING, CheckStatus.WARNING):
            self._successes += 1
            self._failures = 0
            return result if self._successes >= self.before_passing else None
        self._failures += 1
        self._successes = 0
        if self._failures >= self.before_critical:
            return result
        if self._failures >= self.before_warning:
            return CheckResult(CheckStatus.WARNING, result.output)
        return None
