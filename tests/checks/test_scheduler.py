from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from checks_kit import FastClock, FixedRandom, Harness, Servers

from waypost.checks.base import CheckResult, CheckType
from waypost.checks.definition import CheckDefinition, parse_check_definition
from waypost.checks.http import HttpCheck
from waypost.checks.scheduler import CheckScheduler
from waypost.checks.tcp import TcpCheck


@dataclass
class Counting:
    """Wraps a real check type and remembers when each probe started and what it found."""

    inner: CheckType
    clock: FastClock
    starts: list[tuple[float, str]] = field(default_factory=list)
    results: list[tuple[str, str]] = field(default_factory=list)

    @property
    def default_timeout(self) -> float:
        return self.inner.default_timeout

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        self.starts.append((self.clock.now(), definition.tcp))
        result = await self.inner.probe(definition)
        self.results.append((definition.tcp, result.status.value))
        return result

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        return self.inner.on_timeout(definition, timeout)

    async def close(self) -> None:
        await self.inner.close()

    def runs(self, target: str) -> int:
        return sum(1 for _, t in self.starts if t == target)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1500):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition never held")


@pytest.fixture
async def listener() -> tuple[asyncio.Server, str]:
    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    return server, f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def test_hanging_target_delays_no_other_check(
    make_harness: Callable[..., Harness], servers: Servers, listener: tuple[asyncio.Server, str]
) -> None:
    release = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/", hang)
    port = await servers.start(app)
    clock = FastClock()
    tcp = Counting(TcpCheck(), clock)
    harness = make_harness(clock=clock, check_types={"tcp": tcp, "http": HttpCheck()})
    await harness.scheduler.start()
    slow = harness.add({"HTTP": f"http://127.0.0.1:{port}/", "Interval": "1s", "Timeout": "60s"})
    quick = harness.add({"TCP": listener[1], "Interval": "1s"})

    await until(lambda: tcp.runs(listener[1]) >= 5)
    assert harness.recorder.history(quick) == [("passing", f"TCP connect {listener[1]}: Success")]
    assert harness.recorder.history(slow) == []
    assert "context deadline exceeded" in await harness.recorder.wait_for(slow, "critical")
    release.set()
    listener[0].close()


async def test_reports_only_changes(
    make_harness: Callable[..., Harness], listener: tuple[asyncio.Server, str]
) -> None:
    clock = FastClock()
    tcp = Counting(TcpCheck(), clock)
    harness = make_harness(clock=clock, check_types={"tcp": tcp})
    await harness.scheduler.start()
    check = harness.add({"TCP": listener[1], "Interval": "1s"})
    await until(lambda: tcp.runs(listener[1]) >= 4)
    assert len(harness.recorder.history(check)) == 1
    listener[0].close()


async def test_failures_before_critical_through_the_loop(
    make_harness: Callable[..., Harness], listener: tuple[asyncio.Server, str]
) -> None:
    clock = FastClock()
    tcp = Counting(TcpCheck(), clock)
    harness = make_harness(clock=clock, check_types={"tcp": tcp})
    await harness.scheduler.start()
    server, address = listener
    check = harness.add(
        {"TCP": address, "Interval": "1s", "FailuresBeforeCritical": 3, "FailuresBeforeWarning": 2}
    )
    await harness.recorder.wait_for(check, "passing")
    server.close()
    await server.wait_closed()
    await harness.recorder.wait_for(check, "critical")
    statuses = [s for t, s in tcp.results if t == address]
    first_failure = statuses.index("critical")
    assert statuses[first_failure : first_failure + 3] == ["critical"] * 3
    assert [s for s, _ in harness.recorder.history(check)] == ["passing", "warning", "critical"]


async def test_first_run_is_staggered(
    make_harness: Callable[..., Harness], listener: tuple[asyncio.Server, str]
) -> None:
    clock = FastClock()
    tcp = Counting(TcpCheck(), clock)
    harness = make_harness(clock=clock, rng=FixedRandom(0.5), check_types={"tcp": tcp})
    await harness.scheduler.start()
    added = clock.now()
    harness.add({"TCP": listener[1], "Interval": "10s"})
    await until(lambda: tcp.runs(listener[1]) >= 1)
    assert tcp.starts[0][0] - added >= 5.0
    listener[0].close()


async def test_critical_service_is_deregistered_after_the_window(
    make_harness: Callable[..., Harness], listener: tuple[asyncio.Server, str]
) -> None:
    harness = make_harness(speed=200.0, reap_interval=5.0)
    await harness.scheduler.start()
    harness.add(
        {"TCP": closed_port(), "Interval": "10s", "ServiceID": "web", "DeregisterCriticalServiceAfter": "1m"}
    )
    harness.add(
        {"TCP": listener[1], "Interval": "10s", "ServiceID": "db", "DeregisterCriticalServiceAfter": "1m"}
    )
    harness.add({"TCP": closed_port(), "Interval": "10s", "ServiceID": "cache"})
    await until(lambda: "web" in harness.recorder.deregistered)
    assert set(harness.recorder.deregistered) == {"web"}
    listener[0].close()


async def test_removed_check_is_cancelled_and_silent(harness: Harness, servers: Servers) -> None:
    started = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        started.set()
        await asyncio.Event().wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/", hang)
    port = await servers.start(app)
    check = harness.add({"HTTP": f"http://127.0.0.1:{port}/", "Interval": "1s", "Timeout": "1s"})
    async with asyncio.timeout(10):
        await started.wait()
    harness.scheduler.remove(check)
    await asyncio.sleep(0.2)
    assert harness.recorder.history(check) == []


async def test_unsupported_and_unwired_kinds_are_refused(harness: Harness) -> None:
    with pytest.raises(ValueError, match="os_service checks are not supported"):
        harness.add({"OSService": "nginx", "Interval": "10s"})
    with pytest.raises(ValueError, match="alias checks need"):
        harness.add({"AliasService": "web"})


async def test_replacing_a_check_keeps_one_runner(listener: tuple[asyncio.Server, str]) -> None:
    clock = FastClock()
    tcp = Counting(TcpCheck(), clock)
    recorder_updates: list[tuple[str, str, str]] = []

    class Notifier:
        def update_check(self, check_id: str, status: str, output: str) -> None:
            recorder_updates.append((check_id, status, output))

        def deregister_critical_service(self, service_id: str) -> None:
            raise AssertionError(service_id)

    scheduler = CheckScheduler(Notifier(), clock=clock, rng=FixedRandom(), check_types={"tcp": tcp})
    await scheduler.start()
    definition = parse_check_definition({"TCP": listener[1], "Interval": "1s"})
    for _ in range(5):
        scheduler.add("same", definition)
    await until(lambda: tcp.runs(listener[1]) >= 4)
    await scheduler.stop()
    runs = tcp.runs(listener[1])
    await asyncio.sleep(0.2)
    assert tcp.runs(listener[1]) == runs
    gaps = [b - a for (a, _), (b, _) in zip(tcp.starts, tcp.starts[1:], strict=False)]
    assert all(gap >= 1.0 for gap in gaps)
    listener[0].close()
