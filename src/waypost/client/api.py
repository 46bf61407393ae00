"""``ApiClient``: requests, errors in Consul's wording, and blocking-query watches.

Where the agent is and how to reach it follows the waypost and consul CLIs' environment
(``WAYPOST_HTTP_ADDR`` or ``CONSUL_HTTP_ADDR``, ``WAYPOST_HTTP_TOKEN`` or
``CONSUL_HTTP_TOKEN``, ``CONSUL_HTTP_SSL``, ``CONSUL_CACERT``, ``CONSUL_CLIENT_CERT``/``KEY``,
``CONSUL_HTTP_SSL_VERIFY``), so a tool configured for Consul works unchanged. ``watch``
applies Consul's rules for blocking queries: an index that goes backwards restarts from 0,
and an unreachable agent is retried with capped exponential back-off and one log line per
failure streak, never a busy loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from waypost.durations import parse_duration
from waypost.stream.sse import EventTooLarge, SseDecoder, StreamEvent
from waypost.tlsutil import ClientTLS, env_flag

__all__ = ["AgentAddress", "ApiClient", "ApiError", "ApiResponse", "Backoff", "StreamEvent"]

log = logging.getLogger("waypost.client")

DEFAULT_ADDRESS = "127.0.0.1:8500"

QueryValue = str | int | bool | None
Query = Mapping[str, QueryValue] | Sequence[tuple[str, QueryValue]]


class ApiError(Exception):
    """The agent could not be reached (``status`` 0) or answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message if status == 0 else f"Unexpected response code: {status} ({message})")
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class AgentAddress:
    """An agent's HTTP address as the consul CLI accepts it: ``host:port``, ``http://``,
    ``https://``, or Registrator's ``consul://`` and ``consul-tls://``."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> AgentAddress:
        raw = text.strip()
        if "://" not in raw:
            raw = "http://" + raw
        parts = urlsplit(raw)
        scheme = {"consul": "http", "consul-tls": "https"}.get(parts.scheme, parts.scheme)
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"invalid agent address {text!r}: expected host:port or http(s)://host:port")
        try:
            port = parts.port or (443 if scheme == "https" else 8500)
        except ValueError:
            raise ValueError(f"invalid agent address {text!r}: bad port") from None
        return cls(scheme, parts.hostname, port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def index(self) -> int:
        """``X-Consul-Index``; 0 when absent or unreadable."""
        raw = self.headers.get("X-Consul-Index", "")
        return int(raw) if raw.isascii() and raw.isdigit() else 0

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass(slots=True)
class Backoff:
    """Capped exponential delays with jitter; ``reset`` after a success."""

    initial: float = 0.25
    maximum: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return delay * (0.5 + self.rng.random() / 2)

    def reset(self) -> None:
        self.failures = 0


class ApiClient:
    """One agent, one connection pool. Use as ``async with ApiClient() as api``."""

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        datacenter: str = "",
        timeout: float = 10.0,
    ) -> None:
        env = os.environ.get
        text = address or env("WAYPOST_HTTP_ADDR") or env("CONSUL_HTTP_ADDR") or DEFAULT_ADDRESS
        if "://" not in text and env_flag("CONSUL_HTTP_SSL", False):
            text = "https://" + text
        self.address = AgentAddress.parse(text)
        self.token = token if token is not None else env("WAYPOST_HTTP_TOKEN") or env("CONSUL_HTTP_TOKEN", "")
        self.datacenter = datacenter
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            headers = {"X-Consul-Token": self.token} if self.token else {}
            ssl_arg: ssl.SSLContext | bool = (
                ClientTLS.from_flags({}).context() if self.address.scheme == "https" else False
            )
            self._session = aiohttp.ClientSession(
                base_url=self.address.url,
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=ssl_arg),
            )
        return self._session

    def _params(self, query: Query | None) -> list[tuple[str, str]]:
        pairs = list(query.items()) if isinstance(query, Mapping) else list(query or ())
        if self.datacenter and not any(k == "dc" for k, _ in pairs):
            pairs.append(("dc", self.datacenter))
        out = []
        for key, value in pairs:
            if value is None or value is False:
                continue
            out.append((key, "" if value is True else str(value)))
        return out

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: bytes | Any = None,
        read_timeout: float | None = None,
    ) -> ApiResponse:
        """Any answer the agent gives, whatever its status; ApiError(0, ...) if none came."""
        data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
        try:
            async with self._client().request(
                method,
                path,
                params=self._params(query),
                data=data,
                timeout=aiohttp.ClientTimeout(total=read_timeout or self.timeout),
            ) as resp:
                return ApiResponse(resp.status, resp.headers, await resp.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            raise ApiError(0, f"agent at {self.address.url} unreachable: {reason}") from None

    async def call(self, method: str, path: str, **kw: Any) -> ApiResponse:
        """Like ``request``, but an error status raises ApiError in the consul CLI's wording."""
        resp = await self.request(method, path, **kw)
        if resp.status >= 400:
            raise ApiError(resp.status, resp.body.decode(errors="replace").strip())
        return resp

    async def get(self, path: str, query: Query | None = None, **kw: Any) -> ApiResponse:
        return await self.call("GET", path, query=query, **kw)

    async def put(
        self, path: str, body: bytes | Any = None, query: Query | None = None, **kw: Any
    ) -> ApiResponse:
        return await self.call("PUT", path, body=body, query=query, **kw)

    async def delete(self, path: str, query: Query | None = None, **kw: Any) -> ApiResponse:
        return await self.call("DELETE", path, query=query, **kw)

    async def watch(
        self,
        path: str,
        query: Query | None = None,
        *,
        wait: str = "5m",
        backoff: Backoff | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        accept: Collection[int] = (),
    ) -> AsyncIterator[ApiResponse]:
        """Yield the answer to a read, then each answer whose index moved (a blocking query).

        A failed call (unreachable agent, 5xx) is retried with back-off; a 4xx is the
        caller's mistake and raises, except the statuses in ``accept``, which are answers
        like any other (a 404 for a KV key that does not exist yet still blocks on its
        index). Errors are logged once per failure streak; the first read after one does
        not block, since an agent that restarted counts its indexes afresh.
        """
        backoff = backoff or Backoff()
        base = self._params(query)
        index = 0
        failing = False
        while True:
            params = [*base, ("index", str(index)), ("wait", wait)] if index else base
            try:
                resp = await self.request("GET", path, query=params, read_timeout=_wait_timeout(wait))
                if resp.status >= 400 and resp.status not in accept:
                    raise ApiError(resp.status, resp.body.decode(errors="replace").strip())
            except ApiError as exc:
                if 400 <= exc.status < 500:
                    raise
                delay = backoff.next()
                if not failing:
                    log.warning("watch %s: %s; retrying with back-off (%.1fs)", path, exc, delay)
                failing = True
                index = 0  # it may come back restarted, in a new index space: read afresh
                await sleep(delay)
                continue
            if failing:
                log.info("watch %s: agent at %s answers again", path, self.address.url)
            failing = False
            backoff.reset()
            new = resp.index
            if new < index or new <= 0:
                new = 0  # Consul: an index that goes backwards (or is 0) restarts the watch
            if new != index or index == 0:
                yield resp
            index = new

    async def events(
        self, path: str, query: Query | None = None, *, last_id: int | None = None
    ) -> AsyncIterator[StreamEvent]:
        """The events of one ``/v1/stream`` connection, until it ends: a snapshot (or, with
        ``last_id``, the changes after it), then each change. An error status raises."""
        headers = {"Last-Event-ID": str(last_id)} if last_id else {}
        try:
            async with self._client().get(
                path, params=self._params(query), headers=headers, timeout=aiohttp.ClientTimeout(total=None)
            ) as resp:
                if resp.status >= 400:
                    raise ApiError(resp.status, (await resp.text(errors="replace")).strip())
                decoder = SseDecoder()
                async for chunk in resp.content.iter_any():
                    try:
                        events = decoder.feed(chunk)
                    except EventTooLarge as exc:
                        raise ApiError(0, f"stream {path}: {exc}") from None
                    for event in events:
                        yield event
        except (aiohttp.ClientError, OSError) as exc:
            raise ApiError(0, f"stream {path} from {self.address.url} failed: {exc}") from None


def _wait_timeout(wait: str) -> float:
    """Client-side timeout for a blocking query: the wait plus Consul's jitter and slack."""
    try:
        seconds = parse_duration(wait)
    except ValueError:
        seconds = 300.0
    return seconds * 17 / 16 + 15
