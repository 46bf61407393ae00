"""The Docker Engine API calls the registrator makes: list, inspect, and the event stream.

Any Engine-compatible daemon answers them (Docker, podman's API service), over
``$DOCKER_HOST`` as ``unix://`` or ``tcp://``. Failures surface as ``EngineError`` so the
watcher can tell "the engine is away" (retry) from "the container is gone" (``None``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp

from waypost.docker_host import EngineEndpoint

__all__ = ["Engine", "EngineError", "event_action"]

_EVENT_FILTER = json.dumps({"type": ["container"]})
_MAX_EVENT = 1 << 20
"""Bytes of an event still not parsed past which the stream is not JSON at all."""


class EngineError(Exception):
    """The engine could not be reached or answered with an unexpected status."""


def event_action(event: dict[str, Any]) -> tuple[str, str]:
    """(container ID, action) of an event; ``health_status: healthy`` reads as ``health_status``."""
    actor = event.get("Actor") or {}
    container = str(actor.get("ID") or event.get("id") or "")
    action = str(event.get("Action") or event.get("status") or "")
    return container, action.split(":", 1)[0].strip()


class Engine:
    """One connection pool to one engine."""

    def __init__(self, host: str | None = None) -> None:
        try:
            self._endpoint = EngineEndpoint(host)
        except ValueError as exc:
            raise EngineError(f"{exc}: expected unix:// or tcp://") from None
        self.host = self._endpoint.host
        self._base = self._endpoint.base
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._endpoint.session()
        return self._session

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            async with self._client().get(
                self._base + path, params=params, timeout=aiohttp.ClientTimeout(total=30)
            ) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise EngineError(f"GET {path}: {resp.status} {(await resp.text()).strip()}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise EngineError(f"engine at {self.host} unreachable: {exc or type(exc).__name__}") from None

    async def ping(self) -> None:
        try:
            async with self._client().get(
                self._base + "/_ping", timeout=aiohttp.ClientTimeout(total=10)
            ) as r:
                if r.status != 200:
                    raise EngineError(f"engine at {self.host} answered /_ping with {r.status}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise EngineError(f"engine at {self.host} unreachable: {exc or type(exc).__name__}") from None

    async def running(self) -> list[str]:
        """IDs of the running (and paused) containers."""
        listed = await self._get("/containers/json")
        return [str(c["Id"]) for c in listed or [] if isinstance(c, dict) and "Id" in c]

    async def inspect(self, container: str) -> dict[str, Any] | None:
        """The container's inspect JSON, or None when the engine does not know it."""
        found = await self._get(f"/containers/{quote(container, safe='')}/json")
        return found if isinstance(found, dict) else None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Container events until the stream ends. The first item is ``{}``, yielded once
        the engine has accepted the subscription, so the caller can list containers
        knowing nothing after that point is missed."""
        decoder = json.JSONDecoder()
        try:
            async with self._client().get(
                self._base + "/events",
                params={"filters": _EVENT_FILTER},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            ) as resp:
                if resp.status != 200:
                    raise EngineError(f"GET /events: {resp.status} {(await resp.text()).strip()}")
                yield {}
                buffer = ""
                async for chunk in resp.content.iter_any():
                    buffer += chunk.decode(errors="replace")
                    while buffer:
                        buffer = buffer.lstrip()
                        try:
                            event, end = decoder.raw_decode(buffer)
                        except ValueError:
                            if len(buffer) > _MAX_EVENT:
                                raise EngineError(
                                    f"event stream from {self.host}: unreadable event"
                                ) from None
                            break
                        buffer = buffer[end:]
                        if isinstance(event, dict):
                            yield event
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise EngineError(f"event stream from {self.host} failed: {exc or type(exc).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
