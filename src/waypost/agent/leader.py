"""Background duties that exactly one server runs: session TTLs and session invalidation.

Sessions die when their TTL (times Consul's grace multiplier of 2) passes without a
renew, when their node goes away, or when one of their checks goes critical; dying
releases or deletes the locks they hold, in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from waypost.durations import parse_duration
from waypost.state.kv_ops import LockDelays
from waypost.state.session_ops import destroy_session, sessions_to_invalidate
from waypost.state.state import State
from waypost.store.base import Event

__all__ = ["SESSION_TTL_MULTIPLIER", "LeaderDuties"]

log = logging.getLogger("waypost.leader")

SESSION_TTL_MULTIPLIER = 2


class LeaderDuties:
    def __init__(
        self, state: State, lock_delays: LockDelays, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.state = state
        self.lock_delays = lock_delays
        self._clock = clock
        self._expires: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.state.listeners.append(self._on_change)
        self._task = asyncio.create_task(self._run(), name="leader-duties")
        self._wake.set()

    async def stop(self) -> None:
        if self._on_change in self.state.listeners:
            self.state.listeners.remove(self._on_change)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def renew(self, session_id: str) -> None:
        session = self.state.indexes.sessions.get(session_id)
        if session is not None and session.TTL:
            ttl = parse_duration(session.TTL)
            self._expires[session_id] = self._clock() + ttl * SESSION_TTL_MULTIPLIER
            self._wake.set()

    def _on_change(self, batch: list[Event], revision: int) -> None:
        for ev in batch:
            if ev.kv.key.startswith(("sessions/", "catalog/")):
                self._wake.set()
                return

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            self._sync_timers()
            now = self._clock()
            expired = [sid for sid, at in self._expires.items() if at <= now]
            doomed = set(sessions_to_invalidate(self.state)) | set(expired)
            for sid in sorted(doomed):
                self._expires.pop(sid, None)
                try:
                    await destroy_session(self.state, sid, self.lock_delays)
                except Exception:
                    log.exception("could not invalidate session %s", sid)
            next_at = min(self._expires.values(), default=None)
            timeout = None if next_at is None else max(0.0, next_at - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _sync_timers(self) -> None:
        sessions = self.state.indexes.sessions
        for sid in [s for s in self._expires if s not in sessions]:
            del self._expires[sid]
        for sid, session in sessions.items():
            if session.TTL and sid not in self._expires:
                self.renew(sid)
