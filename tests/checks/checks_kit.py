"""Helpers for the check tests: a fast clock, a recording notifier, a harness, local servers.

The clock runs twenty times faster than the wall, so Consul's one-second minimum
interval costs 50 ms while every probe still talks to a real socket or process.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from waypost.checks import CheckScheduler, parse_check_definition

SPEED = 20.0
WAIT = 15.0
"""Real seconds a test waits for an expected report before failing."""


class FastClock:
    """Scheduler time that runs ``speed`` times faster than the event loop's."""

    def __init__(self, speed: float = SPEED) -> None:
        self.speed = speed

    def now(self) -> float:
        return asyncio.get_running_loop().time() * self.speed

    def timeout(self, seconds: float) -> asyncio.Timeout:
        return asyncio.timeout(seconds / self.speed)


class FixedRandom:
    """Pins the stagger: 0.0 runs a new check at once."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@dataclass
class Recorder:
    """A CheckNotifier that remembers every call, in order."""

    updates: list[tuple[str, str, str]] = field(default_factory=list)
    deregistered: list[str] = field(default_factory=list)

    def update_check(self, check_id: str, status: str, output: str) -> None:
        self.updates.append((check_id, status, output))

    def deregister_critical_service(self, service_id: str) -> None:
        self.deregistered.append(service_id)

    def history(self, check_id: str) -> list[tuple[str, str]]:
        return [(s, o) for c, s, o in self.updates if c == check_id]

    async def wait_for(self, check_id: str, status: str, contains: str = "", since: int | None = None) -> str:
        """The output of the first matching report after the call's start (or after report
        number ``since``, taken before the change the caller makes); fails after WAIT."""
        seen = len(self.history(check_id)) if since is None else since
        async with asyncio.timeout(WAIT):
            while True:
                history = self.history(check_id)
                for got_status, output in history[seen:]:
                    if got_status == status and contains in output:
                        return output
                seen = len(history)
                await asyncio.sleep(0.01)


_ids = itertools.count(1)


@dataclass
class Harness:
    recorder: Recorder
    scheduler: CheckScheduler

    def add(self, body: dict[str, Any]) -> str:
        check_id = f"check-{next(_ids)}"
        self.scheduler.add(check_id, parse_check_definition(body))
        return check_id


class Servers:
    """aiohttp apps on 127.0.0.1; a test stops one early to watch its check fail."""

    def __init__(self) -> None:
        self._runners: dict[int, web.AppRunner] = {}

    async def start(self, app: web.Application, port: int = 0, **site_kwargs: Any) -> int:
        """Serve ``app`` on ``port`` (0 picks a free one); returns the bound port."""
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True, **site_kwargs)
        await site.start()
        bound = int(runner.addresses[0][1])
        self._runners[bound] = runner
        return bound

    async def stop(self, port: int) -> None:
        await self._runners.pop(port).cleanup()

    async def close(self) -> None:
        for port in list(self._runners):
            await self.stop(port)
