"""The sidecar's inbound authorization: ``/v1/agent/connect/authorize`` decisions cached per
client certificate URI, dropped whenever an intention changes.

Consul's built-in proxy keeps each decision until the intentions change, so a connection
from a source already decided costs no HTTP call; so does this one. The intentions that
match the destination are followed with a blocking query
(``/v1/connect/intentions/match?by=destination``, whose index moves with any intention):
each answer drops every decision, so a denied intention holds for new connections as soon
as the query wakes. A decision asked for before an answer it could predate is not kept.
While the query fails (an unreachable agent) or is refused (ACLs), nothing is cached and
every connection asks the agent, as it would without a cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from waypost.client import ApiClient, ApiError

__all__ = ["MAX_DECISIONS", "Authorizer"]

log = logging.getLogger("waypost.proxy")

MAX_DECISIONS = 4096
"""Sources kept at most; past that the cache starts afresh (sources are services, so few)."""


class Authorizer:
    def __init__(self, api: ApiClient, destination: str, *, wait: str = "5m") -> None:
        self.api = api
        self.destination = destination
        self.wait = wait
        self.asked = 0
        """Authorize calls made since start (status and tests)."""
        self.following = False
        """True while the intentions query answers, the only time decisions are kept."""
        self._decisions: dict[str, tuple[bool, str]] = {}
        self._generation = 0
        self._followed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name=f"intentions {self.destination}")

    async def retarget(self, destination: str) -> None:
        """Authorize for ``destination`` from now on (the sidecar's destination changed)."""
        await self.close()
        self.destination = destination
        self.start()

    async def followed(self) -> None:
        """Return once the intentions query has answered (bound it with a timeout)."""
        while not self.following:
            await self._followed.wait()

    def _drop(self, following: bool) -> None:
        self._decisions.clear()
        self._generation += 1
        self.following = following
        if following:
            self._followed.set()
            self._followed = asyncio.Event()

    async def _unreachable(self, delay: float) -> None:
        """The watch's pause after a failed query: decisions may be stale until it answers."""
        self._drop(following=False)
        await asyncio.sleep(delay)

    async def _follow(self) -> None:
        query = {"by": "destination", "name": self.destination}
        try:
            async for _ in self.api.watch(
                "/v1/connect/intentions/match", query, wait=self.wait, sleep=self._unreachable
            ):
                self._drop(following=True)
        except ApiError as exc:
            self._drop(following=False)
            log.warning(
                "%s: intentions cannot be followed (%s); every connection asks the agent",
                self.destination,
                exc,
            )

    async def allowed(self, uri: str, serial: str) -> tuple[bool, str]:
        """Whether the client certificate ``uri`` may connect, and why; an agent that cannot
        answer refuses (and that refusal is not kept)."""
        if self.following and (known := self._decisions.get(uri)) is not None:
            return known
        generation = self._generation
        self.asked += 1
        body = {"Target": self.destination, "ClientCertURI": uri, "ClientCertSerial": serial}
        try:
            answer = (await self.api.call("POST", "/v1/agent/connect/authorize", body=body)).json() or {}
        except ApiError as exc:
            return False, f"authorize failed: {exc}"
        decision = answer.get("Authorized") is True, str(answer.get("Reason") or "not authorized")
        if self.following and generation == self._generation:
            if len(self._decisions) >= MAX_DECISIONS:
                self._decisions.clear()
            self._decisions[uri] = decision
        return decision

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop(following=False)
