"""The one loop that runs every check on the agent.

Consul gives each check a goroutine that sleeps between runs. Ten thousand sleeping
asyncio tasks would cost ten thousand timers, so instead one task keeps a heap of
due times: interval probes, TTL expiries and the critical-service reaper all wait in
it. A due probe is launched as its own task behind a concurrency guard and timed out
there, so a hanging target delays nothing but itself; the next run is planned one
interval after the previous one finished, as in Consul, so runs of a slow check never
overlap.
"""

from __future__ import annotations

import asyncio
import heapq
import importlib
import itertools
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from waypost.checks.alias import follow_alias
from waypost.checks.base import AliasSource, CheckNotifier, CheckResult, CheckType, Clock, LoopClock, Random
from waypost.checks.definition import CheckDefinition
from waypost.checks.script import ScriptCheck
from waypost.checks.tcp import TcpCheck
from waypost.checks.thresholds import Thresholds
from waypost.checks.ttl import TtlState
from waypost.checks.udp import UdpCheck
from waypost.state.model import CheckStatus

__all__ = [
    "MIN_DEREGISTER_AFTER",
    "MIN_INTERVAL",
    "REAP_INTERVAL",
    "CheckScheduler",
    "ScriptChecksDisabledError",
    "default_check_types",
]

log = logging.getLogger("waypost.checks")

MIN_INTERVAL = 1.0
"""Consul's ``MinInterval``: shorter intervals are raised to it, not refused."""
REAP_INTERVAL = 30.0
"""Consul's ``CheckReapInterval``: how often critical services are considered for removal."""
MIN_DEREGISTER_AFTER = 60.0
"""Consul's ``CheckDeregisterIntervalMin``: DeregisterCriticalServiceAfter is raised to it."""

_SCRIPT_KINDS = frozenset({"script", "docker"})
_SCRIPTS_DISABLED = (
    "Scripts are disabled on this agent; to enable, configure "
    "'enable_script_checks' or 'enable_local_script_checks' to true"
)


class ScriptChecksDisabledError(PermissionError):
    """A script or docker check was added to a scheduler built without ``allow_scripts``."""

    def __init__(self) -> None:
        super().__init__(_SCRIPTS_DISABLED)


class _Deferred:
    """A check type whose module is imported on first use.

    The Docker, gRPC and H2PING checks pull in aiohttp, grpcio and h2 (about 170 ms of imports
    together); an agent that runs none of them should not pay that at start-up, where
    HashiCorp's API test harness allows an agent two seconds to answer.
    """

    __slots__ = ("_class", "_impl", "_module")

    def __init__(self, module: str, class_name: str) -> None:
        self._module = module
        self._class = class_name
        self._impl: CheckType | None = None

    def _load(self) -> CheckType:
        if self._impl is None:
            self._impl = getattr(importlib.import_module(self._module), self._class)()
        return self._impl

    @property
    def default_timeout(self) -> float:
        return self._load().default_timeout

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        return await self._load().probe(definition)

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        return self._load().on_timeout(definition, timeout)

    async def close(self) -> None:
        if self._impl is not None:
            await self._impl.close()


def default_check_types() -> dict[str, CheckType]:
    """Every interval check type, by Consul's ``Type`` name: the one place they are listed."""
    return {
        "http": _Deferred("waypost.checks.http", "HttpCheck"),
        "tcp": TcpCheck(),
        "udp": UdpCheck(),
        "grpc": _Deferred("waypost.checks.grpc", "GrpcCheck"),
        "h2ping": _Deferred("waypost.checks.h2ping", "H2PingCheck"),
        "script": ScriptCheck(),
        "docker": _Deferred("waypost.checks.docker", "DockerCheck"),
    }


@dataclass(eq=False, slots=True)
class _Check:
    check_id: str
    definition: CheckDefinition
    status: str
    output: str = ""
    check_type: CheckType | None = None
    interval: float = 0.0
    timeout: float = 0.0
    thresholds: Thresholds | None = None
    ttl: TtlState | None = None
    task: asyncio.Task[None] | None = None
    critical_since: float | None = None
    deregister_after: float = 0.0
    deadline: float = 0.0
    """TTL checks: when the TTL runs out. Heartbeats move it without touching the heap."""
    armed: bool = False
    """TTL checks: whether a heap entry is pending; only one ever is."""
    token: int = 0
    """Bumped on every reschedule; heap entries carrying an older token are stale."""


@dataclass(order=True, slots=True)
class _Due:
    at: float
    seq: int
    check: _Check | None = field(compare=False)
    """None marks the reaper's own turn."""
    token: int = field(compare=False, default=0)


class CheckScheduler:
    """Runs checks and reports changes to ``notifier``; call every method from the event loop.

    ``max_concurrency`` bounds probes in flight; ``reap_interval`` exists for tests.
    """

    def __init__(
        self,
        notifier: CheckNotifier,
        *,
        clock: Clock | None = None,
        rng: Random | None = None,
        allow_scripts: bool = False,
        alias_source: AliasSource | None = None,
        check_types: Mapping[str, CheckType] | None = None,
        max_concurrency: int = 1024,
        reap_interval: float = REAP_INTERVAL,
    ) -> None:
        self._notifier = notifier
        self._clock = clock or LoopClock()
        self._rng = rng or random.Random()
        self._allow_scripts = allow_scripts
        self._alias_source = alias_source
        self._types = dict(check_types) if check_types is not None else default_check_types()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._reap_interval = reap_interval
        self._checks: dict[str, _Check] = {}
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    def check_supported(self, definition: CheckDefinition) -> None:
        """Raise for a check this scheduler cannot run, so that a registration is refused
        before anything of it is kept."""
        kind = definition.kind
        if kind in _SCRIPT_KINDS and not self._allow_scripts:
            raise ScriptChecksDisabledError()
        if kind == "alias" and self._alias_source is None:
            raise ValueError("alias checks need the agent's catalog, which this scheduler was not given")
        if kind not in self._types and kind not in ("ttl", "alias"):
            raise ValueError(f"{kind or 'untyped'} checks are not supported by this agent")

    def add(self, check_id: str, definition: CheckDefinition) -> None:
        """Start running ``definition`` under ``check_id``, replacing any check of that id.

        The first run comes after a random fraction of the interval, so checks added
        together (an agent restart) do not all fire at once.
        """
        self.check_supported(definition)
        kind = definition.kind
        self.remove(check_id)
        now = self._clock.now()
        check = _Check(check_id, definition, status=definition.status or CheckStatus.CRITICAL)
        if check.status == CheckStatus.CRITICAL:
            check.critical_since = now
        if definition.service_id and definition.deregister_critical_service_after > 0:
            check.deregister_after = max(definition.deregister_critical_service_after, MIN_DEREGISTER_AFTER)
        self._checks[check_id] = check
        if kind == "ttl":
            check.ttl = TtlState(definition.output_max_size)
            self._arm(check, now)
        elif kind == "alias":
            assert self._alias_source is not None
            check.task = asyncio.create_task(
                follow_alias(
                    check_id, definition, self._alias_source, self._clock, lambda r: self._report(check, r)
                )
            )
        else:
            check.check_type = self._types[kind]
            check.interval = max(definition.interval, MIN_INTERVAL)
            check.timeout = definition.timeout or check.check_type.default_timeout
            check.thresholds = Thresholds(
                definition.success_before_passing,
                definition.failures_before_warning,
                definition.failures_before_critical,
            )
            self._push(check, now + self._rng.random() * check.interval)

    def remove(self, check_id: str) -> None:
        """Stop a check; a probe in flight is cancelled and never reported. Unknown ids are ignored."""
        check = self._checks.pop(check_id, None)
        if check is not None and check.task is not None:
            check.task.cancel()

    def ttl_update(self, check_id: str, status: str, output: str) -> str:
        """A pass/warn/fail/update call: report it and restart the TTL; returns the stored output.

        Raises KeyError for an unknown id and ValueError for a check that is not a TTL
        check or a status that is not passing/warning/critical, in Consul's words.
        """
        check = self._checks.get(check_id)
        if check is None:
            raise KeyError(
                f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not the check name.'
            )
        if check.ttl is None:
            raise ValueError(f'CheckID "{check_id}" does not have associated TTL')
        result = check.ttl.update(status, output)
        self._report(check, result)
        self._arm(check, self._clock.now())
        return result.output

    async def start(self) -> None:
        if self._loop_task is None:
            heapq.heappush(self._heap, _Due(self._clock.now() + self._reap_interval, next(self._seq), None))
            self._loop_task = asyncio.create_task(self._run(), name="waypost-check-scheduler")

    async def stop(self) -> None:
        """Cancel everything in flight and release the check types' connection pools."""
        tasks = [c.task for c in self._checks.values() if c.task is not None]
        if self._loop_task is not None:
            tasks.append(self._loop_task)
            self._loop_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._checks.clear()
        self._heap.clear()
        for check_type in self._types.values():
            await check_type.close()

    def _push(self, check: _Check, at: float) -> None:
        check.token += 1
        if not self._heap or at < self._heap[0].at:
            self._wake.set()
        heapq.heappush(self._heap, _Due(at, next(self._seq), check, check.token))

    async def _run(self) -> None:
        while True:
            now = self._clock.now()
            while self._heap and self._heap[0].at <= now:
                due = heapq.heappop(self._heap)
                if due.check is None:
                    self._reap(now)
                    heapq.heappush(self._heap, _Due(now + self._reap_interval, next(self._seq), None))
                elif self._checks.get(due.check.check_id) is due.check and due.token == due.check.token:
                    self._fire(due.check, now)
            self._wake.clear()
            delay = self._heap[0].at - now if self._heap else None
            try:
                if delay is None:
                    await self._wake.wait()
                else:
                    async with self._clock.timeout(delay):
                        await self._wake.wait()
            except TimeoutError:
                pass

    def _arm(self, check: _Check, now: float) -> None:
        """Restart a TTL; a heartbeat only moves the deadline when an entry is already queued."""
        check.deadline = now + check.definition.ttl
        if not check.armed:
            check.armed = True
            self._push(check, check.deadline)

    def _fire(self, check: _Check, now: float) -> None:
        if check.ttl is None:
            check.task = asyncio.create_task(self._probe(check))
        elif check.deadline > now:
            self._push(check, check.deadline)
        else:
            check.armed = False
            self._report(check, check.ttl.expired())

    async def _probe(self, check: _Check) -> None:
        assert check.check_type is not None
        assert check.thresholds is not None
        async with self._slots:
            try:
                async with self._clock.timeout(check.timeout):
                    result = await check.check_type.probe(check.definition)
            except TimeoutError:
                result = check.check_type.on_timeout(check.definition, check.timeout)
            except Exception as exc:  # a bug in one check type must not stop the check
                log.exception("check %s: probe failed", check.check_id)
                result = CheckResult(CheckStatus.CRITICAL, f"check failed: {exc}")
        if self._checks.get(check.check_id) is not check:
            return
        check.task = None
        reported = check.thresholds.apply(result)
        if reported is not None:
            self._report(check, reported)
        self._push(check, self._clock.now() + check.interval)

    def _report(self, check: _Check, result: CheckResult) -> None:
        """Tell the agent, but only about a change: every report is a catalog write."""
        status = result.status.value
        if status == check.status and result.output == check.output:
            return
        if status == CheckStatus.CRITICAL and check.status != CheckStatus.CRITICAL:
            check.critical_since = self._clock.now()
        elif status != CheckStatus.CRITICAL:
            check.critical_since = None
        check.status, check.output = status, result.output
        self._notifier.update_check(check.check_id, status, result.output)

    def _reap(self, now: float) -> None:
        """Consul's reaper: deregister each service with a check critical for too long.

        Repeats on later passes until the agent removes the service's checks.
        """
        doomed = {
            c.definition.service_id
            for c in self._checks.values()
            if c.deregister_after
            and c.critical_since is not None
            and now - c.critical_since > c.deregister_after
        }
        for service_id in sorted(doomed):
            log.info(
                "deregistering service %s: critical longer than its deregister_critical_service_after",
                service_id,
            )
            self._notifier.deregister_critical_service(service_id)
