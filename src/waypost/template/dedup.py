"""De-duplication mode: one renderer per template across every ``waypost template`` that
runs it, elected through a KV lock held by a session; the others take the rendered text
from KV instead of querying the catalog themselves.

Keys live under ``<prefix><hash of the template text>/``: ``lock`` (the election) and
``data`` (the leader's last output). consul-template shares its dependency data there;
waypost shares the rendered text, so every instance of a template must render the same
bytes (the same ``env`` values), which is consul-template's caveat too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable

from waypost.client import ApiClient, ApiError, Backoff
from waypost.template.values import decode_value

__all__ = ["Dedup"]

log = logging.getLogger("waypost.template")

SESSION_TTL = 15.0


def template_key(prefix: str, text: str) -> str:
    return prefix + hashlib.sha256(text.encode()).hexdigest()[:16]


class Dedup:
    """Elections and shared outputs for a list of templates (by index)."""

    def __init__(self, api: ApiClient, prefix: str, texts: list[str], on_change: Callable[[], None]) -> None:
        self.api = api
        self.keys = [template_key(prefix, t) for t in texts]
        self.on_change = on_change
        self.leader = [False] * len(texts)
        self.shared: list[str | None] = [None] * len(texts)
        self.session = ""
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        body = {
            "Name": "waypost-template",
            "TTL": f"{SESSION_TTL:.0f}s",
            "LockDelay": "0s",
            "Behavior": "release",
        }
        self.session = str((await self.api.put("/v1/session/create", body)).json()["ID"])
        self._tasks.append(asyncio.create_task(self._renew(), name="dedup renew"))
        for i in range(len(self.keys)):
            self._tasks.append(asyncio.create_task(self._elect(i), name=f"dedup {self.keys[i]}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.session:
            with contextlib.suppress(ApiError):
                await self.api.put(f"/v1/session/destroy/{self.session}")

    async def publish(self, i: int, output: str) -> None:
        """The leader's output for the followers."""
        await self.api.put(f"/v1/kv/{self.keys[i]}/data", output.encode())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(SESSION_TTL / 3)
            try:
                await self.api.put(f"/v1/session/renew/{self.session}")
            except ApiError as err:
                log.warning("dedup: renewing the session: %s", err)

    async def _elect(self, i: int) -> None:
        lock = f"/v1/kv/{self.keys[i]}/lock"
        backoff = Backoff()
        while True:
            try:
                won = (await self.api.put(lock, b"", query={"acquire": self.session})).json() is True
            except ApiError as err:
                log.warning("dedup: %s: %s", lock, err)
                await asyncio.sleep(backoff.next())
                continue
            if won:
                log.info("dedup: this instance renders %s", self.keys[i])
                self.leader[i] = True
                self.on_change()
                return
            await self._follow(i, lock)

    async def _follow(self, i: int, lock: str) -> None:
        """Take the leader's outputs until the lock is free, then stand again."""
        data = asyncio.create_task(self._watch_data(i))
        try:
            async for resp in self.api.watch(lock, accept=(404,)):
                held = resp.status == 200 and any((e.get("Session") or "") for e in resp.json() or [])
                if not held:
                    return
        finally:
            data.cancel()
            await asyncio.gather(data, return_exceptions=True)

    async def _watch_data(self, i: int) -> None:
        async for resp in self.api.watch(f"/v1/kv/{self.keys[i]}/data", accept=(404,)):
            if resp.status == 200 and resp.json():
                text = decode_value(resp.json()[0].get("Value"))
                if text != self.shared[i]:
                    self.shared[i] = text
                    self.on_change()
