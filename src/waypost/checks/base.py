"""The seams of the checks package: what a check type, the agent and the clock must offer.

Everything that differs between check types sits behind :class:`CheckType`; everything
they share (stagger, interval, timeout, thresholds, reaping) lives once in the scheduler.
The agent plugs in through :class:`CheckNotifier` and, for alias checks,
:class:`AliasSource`, so this package never imports the catalog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from waypost.checks.definition import CheckDefinition
from waypost.durations import format_duration
from waypost.state.model import CheckStatus, HealthCheck

__all__ = [
    "DEFAULT_OUTPUT_MAX_SIZE",
    "AliasSource",
    "CheckNotifier",
    "CheckResult",
    "CheckType",
    "Clock",
    "LoopClock",
    "Random",
    "TailBuffer",
    "timed_out",
]

DEFAULT_OUTPUT_MAX_SIZE = 4096
"""Consul's ``DefaultBufSize``: output beyond this is cut so one chatty check cannot bloat the catalog."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One probe's verdict, before thresholds decide whether the catalog hears of it."""

    status: CheckStatus
    output: str


class CheckType(Protocol):
    """One kind of interval check (http, tcp, ...), stateless per probe.

    A check type never sleeps or times itself out: the scheduler cancels ``probe`` when
    the check's timeout elapses and asks :meth:`on_timeout` what that means, because for
    UDP a silent peer is healthy while for HTTP it is a failure.
    """

    @property
    def default_timeout(self) -> float:
        """Seconds allowed when the definition has no Timeout (Consul: 10s, 30s for scripts)."""
        ...

    async def probe(self, definition: CheckDefinition) -> CheckResult: ...

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult: ...

    async def close(self) -> None:
        """Release shared pools (HTTP sessions, sockets) when the scheduler stops."""
        ...


class CheckNotifier(Protocol):
    """The agent's side: it owns the catalog and queues the writes."""

    def update_check(self, check_id: str, status: str, output: str) -> None: ...

    def deregister_critical_service(self, service_id: str) -> None: ...


class AliasSource(Protocol):
    """The catalog as an alias check reads it; the agent implements this over its state.

    ``node`` is "" for the agent's own node (Consul then reads local state, not the
    catalog).
    """

    def node_checks(self, node: str) -> Sequence[HealthCheck]:
        """Every check on ``node``, node-level and service-level."""
        ...

    def service_exists(self, node: str, service_id: str) -> bool: ...

    async def wait_change(self, node: str, last_index: int) -> int:
        """Return the new index once ``node``'s checks may have changed since ``last_index``.

        ``last_index`` 0 returns at once. Spurious returns are fine: the alias re-reads
        and reports only real changes; the scheduler also re-reads every minute.
        """
        ...


class Random(Protocol):
    """The slice of :class:`random.Random` the scheduler uses, so tests can pin stagger."""

    def random(self) -> float: ...


class Clock(Protocol):
    """Time as the scheduler sees it; a test clock can run it faster than the wall."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def timeout(self, seconds: float) -> asyncio.Timeout:
        """A context manager that cancels its body after ``seconds`` of this clock."""
        ...


class LoopClock:
    """The event loop's own monotonic clock: what production runs on."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def timeout(self, seconds: float) -> asyncio.Timeout:
        return asyncio.timeout(seconds)


def timed_out(timeout: float) -> CheckResult:
    """Consul's verdict on a command (script, docker exec) that outlived its Timeout."""
    return CheckResult(CheckStatus.CRITICAL, f"Timed out ({format_duration(timeout)}) running check")


class TailBuffer:
    """Consul's circular output buffer: keeps only the last ``limit`` bytes.

    The tail, not the head, because a failing script or page usually says why at the
    end; memory stays bounded however much a target writes.
    """

    __slots__ = ("_data", "limit", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._data += chunk
        if len(self._data) > self.limit:
            del self._data[: len(self._data) - self.limit]

    def text(self) -> str:
        return self._data.decode("utf-8", "replace")

    def report(self) -> str:
        """The text, prefixed as Consul's script checks do when bytes were dropped."""
        if self.total > self.limit:
            return f"Captured {self.limit} of {self.total} bytes\n...\n{self.text()}"
        return self.text()
