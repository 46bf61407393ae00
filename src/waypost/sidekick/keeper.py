"""Anti-entropy from outside the agent: keep one service registered and its TTL check fed.

An agent that restarts without its state answers the next heartbeat with 404 (unknown
check); the keeper then registers the service again. An unreachable or refusing agent is
retried with capped back-off and one log line per failure streak, so a long outage neither
floods the log nor spins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import quote

from waypost.client import ApiClient, ApiError, Backoff
from waypost.sidekick.probes import Probe
from waypost.sidekick.spec import Spec

__all__ = ["Outcome", "Registration", "RegistrationRefusedError", "keep_registered"]

log = logging.getLogger("waypost.run")

#: Back-off between failed calls: quick enough to notice an agent restart, capped for long outages.
RETRY_INITIAL, RETRY_MAX = 0.5, 15.0


class Outcome(Enum):
    REGISTERED = "registered"
    """The service was (re)registered; a heartbeat with the probe's output follows at once."""
    BEAT = "beat"
    """The check took the heartbeat; wait for the next one."""
    LOST = "lost"
    """The agent no longer knows the check: register again at once."""
    FAILED = "failed"
    """The call failed; retry after back-off."""
    REFUSED = "refused"
    """The agent called the registration malformed (400): no retry can help."""


class RegistrationRefusedError(Exception):
    """The agent will not take this service as given; ``str`` says why in its words."""


@dataclass
class Registration:
    """Which call comes next and what an answer means (no I/O)."""

    spec: Spec
    registered: bool = False
    fresh: bool = False
    """The last call was a registration."""

    def request(self, probe: Probe) -> tuple[str, Any]:
        status, output = probe
        if not self.registered:
            return "/v1/agent/service/register", self.spec.registration(status)
        return f"/v1/agent/check/update/{quote(self.spec.check_id, safe=':')}", {
            "Status": status,
            "Output": output,
        }

    def answered(self, status: int, body: str = "") -> Outcome:
        """What the answer means; ``status`` 0 when none came (the agent was unreachable)."""
        fresh, self.fresh = self.fresh, False
        if status == 400 and not self.registered:
            return Outcome.REFUSED
        if status == 200:
            if self.registered:
                return Outcome.BEAT
            self.registered = self.fresh = True
            return Outcome.REGISTERED
        # An unknown check: 404 from Consul today, 500 with these words from older releases.
        unknown = status == 404 or (status == 500 and "does not have associated TTL" in body)
        if unknown and self.registered:
            self.registered = False
            # Unknown right after registering is not a restart but an agent to back off from.
            return Outcome.FAILED if fresh else Outcome.LOST
        return Outcome.FAILED


async def keep_registered(spec: Spec, api: ApiClient, probe: Callable[[], Awaitable[Probe]]) -> None:
    """Register, then heartbeat every ``spec.heartbeat`` seconds until cancelled."""
    state = Registration(spec)
    backoff = Backoff(initial=RETRY_INITIAL, maximum=RETRY_MAX)
    loop = asyncio.get_running_loop()
    failing = False
    last: str | None = None
    while True:
        started = loop.time()
        result = await probe()
        path, body = state.request(result)
        try:
            resp = await api.request("PUT", path, body=body)
            text = resp.body.decode(errors="replace").strip()
            outcome, problem = state.answered(resp.status, text), str(ApiError(resp.status, text))
        except ApiError as exc:
            outcome, problem = state.answered(0), str(exc)
        if outcome is Outcome.REFUSED:
            raise RegistrationRefusedError(f"the agent refused to register service {spec.id!r}: {problem}")
        if outcome is Outcome.FAILED:
            delay = backoff.next()
            if not failing:
                action = "heartbeat" if state.registered else "registration"
                log.warning(
                    "%s of service %r failed: %s; retrying with back-off (%.1fs)",
                    action,
                    spec.id,
                    problem,
                    delay,
                )
            failing = True
            await asyncio.sleep(delay)
            continue
        if failing:
            log.info("agent at %s answers again", api.address.url)
        failing = False
        backoff.reset()
        if outcome is Outcome.REGISTERED:
            log.info("registered service %r (id %r) with check %r", spec.service, spec.id, spec.check_id)
            continue
        if outcome is Outcome.LOST:
            log.warning("agent no longer knows check %r (restarted?); registering again", spec.check_id)
            continue
        if result[0] != last:
            log.info("check %r is %s: %s", spec.check_id, result[0], result[1].partition("\n")[0][:200])
            last = result[0]
        await asyncio.sleep(max(0.0, started + spec.heartbeat - loop.time()))
