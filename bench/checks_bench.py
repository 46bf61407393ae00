"""Health-check scheduler capacity: many HTTP or TCP checks against a local nginx.

Runs the real CheckScheduler and check types for a bounded time and reports, per
scenario, the scheduling lag (when a probe actually started against when it was due:
stagger for the first run, previous finish plus interval after that), false failures
(any non-passing report: the target never fails) and the process's CPU share of one
core. nginx (Debian's nginx-light) is started on 127.0.0.1 with a throwaway config.

    python bench/checks_bench.py                      # the three standard scenarios
    python bench/checks_bench.py --only http:2000 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvloop
from _common import append_results

from waypost.checks.base import CheckResult, CheckType, LoopClock
from waypost.checks.definition import CheckDefinition, parse_check_definition
from waypost.checks.http import HttpCheck
from waypost.checks.scheduler import CheckScheduler
from waypost.checks.tcp import TcpCheck

SCENARIOS = ("http:2000", "http:10000", "tcp:10000")
NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{ listen 127.0.0.1:{port} backlog=8192; location / {{ return 200 'ok'; }} }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, port=port))
    process = subprocess.Popen([nginx, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"])
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    process.kill()
    raise SystemExit("nginx did not start")


class RecordingRandom:
    """Hands the scheduler its stagger fractions and keeps them, in the order checks are added."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self.drawn: list[float] = []

    def random(self) -> float:
        value = self._random.random()
        self.drawn.append(value)
        return value


@dataclass
class Lag:
    """Wraps a check type; knows each check's due time from the stagger and its last finish."""

    inner: CheckType
    interval: float
    clock: LoopClock
    due: dict[str, float] = field(default_factory=dict)
    first: list[float] = field(default_factory=list)
    """Lag of first runs, which includes the burst of registering every check at once."""
    lags: list[float] = field(default_factory=list)
    """Lag of later runs: the steady state."""
    _seen: set[str] = field(default_factory=set)

    @property
    def default_timeout(self) -> float:
        return self.inner.default_timeout

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        check_id = definition.check_id
        (self.lags if check_id in self._seen else self.first).append(self.clock.now() - self.due[check_id])
        self._seen.add(check_id)
        try:
            return await self.inner.probe(definition)
        finally:
            self.due[definition.check_id] = self.clock.now() + self.interval

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        self.due[definition.check_id] = self.clock.now() + self.interval
        return self.inner.on_timeout(definition, timeout)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Failures:
    reports: int = 0
    failures: int = 0

    def update_check(self, check_id: str, status: str, output: str) -> None:
        self.reports += 1
        if status != "passing":
            self.failures += 1
            if self.failures <= 3:
                print(f"  false failure {check_id}: {status} {output[:120]}", file=sys.stderr)

    def deregister_critical_service(self, service_id: str) -> None:
        """No check here has DeregisterCriticalServiceAfter."""


async def run(kind: str, count: int, port: int, interval: float, duration: float) -> str:
    clock = LoopClock()
    rng = RecordingRandom(seed=count)
    inner: CheckType = HttpCheck() if kind == "http" else TcpCheck()
    lag = Lag(inner, interval, clock)
    notifier = Failures()
    scheduler = CheckScheduler(notifier, clock=clock, rng=rng, check_types={kind: lag})
    target = f"http://127.0.0.1:{port}/health" if kind == "http" else f"127.0.0.1:{port}"
    await scheduler.start()
    started = clock.now()
    for i in range(count):
        check_id = f"{kind}-{i}"
        body = {"ID": check_id, kind.upper(): target, "Interval": f"{interval:g}s"}
        scheduler.add(check_id, parse_check_definition(body))
        lag.due[check_id] = started + rng.drawn[-1] * interval
    cpu_before, wall_before = _cpu(), time.perf_counter()
    await asyncio.sleep(duration)
    cpu, wall = _cpu() - cpu_before, time.perf_counter() - wall_before
    await scheduler.stop()
    probes = len(lag.first) + len(lag.lags)
    return (
        f"{kind} N={count} interval={interval:g}s: {probes / wall:,.0f} probes/s "
        f"lag first-run {_quantiles(lag.first)}; steady {_quantiles(lag.lags)}; "
        f"false_failures={notifier.failures} cpu={cpu / wall:.0%} of one core"
    )


def _quantiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50={statistics.median(ordered) * 1e3:.1f}ms p99={p99 * 1e3:.1f}ms max={ordered[-1] * 1e3:.0f}ms"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", help="kind:count, e.g. http:2000 (repeatable)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between runs of one check")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds to measure each scenario")
    args = parser.parse_args()
    # 10k sockets at once need the descriptor limit raised to the hard cap.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="checks-bench-") as folder:
        nginx, port = start_nginx(Path(folder))
        try:
            lines = []
            for scenario in args.only or SCENARIOS:
                kind, count = scenario.split(":")
                lines.append(uvloop.run(run(kind, int(count), port, args.interval, args.duration)))
                print(lines[-1], flush=True)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    table = "\n".join(f"- `{line}`" for line in lines)
    append_results(
        "Check scheduling lag vs planned start (nginx targets)",
        table,
        "ratio n/a (lag and false failures above)",
    )


if __name__ == "__main__":
    main()
