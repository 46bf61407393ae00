"""TTL checks: the service reports its own health and goes critical if it stops reporting.

Only the bookkeeping lives here; the scheduler owns the expiry timer in its one heap,
so a TTL check costs no task while it waits.
"""

from __future__ import annotations

from waypost.checks.base import DEFAULT_OUTPUT_MAX_SIZE, CheckResult
from waypost.state.model import CheckStatus

__all__ = ["TtlState"]

_SETTABLE = frozenset({CheckStatus.PASSING, CheckStatus.WARNING, CheckStatus.CRITICAL})


class TtlState:
    """Remembers the last reported output so the expiry message can quote it."""

    __slots__ = ("_last_output", "output_max_size")

    def __init__(self, output_max_size: int) -> None:
        self.output_max_size = output_max_size or DEFAULT_OUTPUT_MAX_SIZE
        self._last_output = ""

    def update(self, status: str, output: str) -> CheckResult:
        """Validate a pass/warn/fail/update call and trim its output as Consul does."""
        if status not in _SETTABLE:
            raise ValueError(f"Unknown check status: {status!r}")
        total = len(output)
        if total > self.output_max_size:
            limit = self.output_max_size
            output = f"{output[:limit]} ... (captured {limit} of {total} bytes)"
        self._last_output = output
        return CheckResult(CheckStatus(status), output)

    def expired(self) -> CheckResult:
        if not self._last_output:
            return CheckResult(CheckStatus.CRITICAL, "TTL expired")
        return CheckResult(
            CheckStatus.CRITICAL, f"TTL expired (last output before timeout follows): {self._last_output}"
        )
