"""The store of a client agent: every call goes to a server agent's /v1/internal/store API,
served only on the servers' agent-to-server listener (``ports.server``, Consul's server
RPC port), never on the public HTTP port.

Servers are tried in turn; a call that cannot reach one moves to the next, so a client
survives the loss of any server as long as one answers. A transaction is never blindly
re-sent: see ``RemoteStore.txn``. Watches long-poll, and the lean replica's follows one
stream; both resume from the last revision they delivered, on whichever server answers
next. A client agent starts with no server at all and learns them by joining; until
then every call fails with Consul's "No known Consul servers".
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from waypost.http_client import ConnectError, HttpClient
from waypost.store import wire
from waypost.store.base import (
    CompactedError,
    Compare,
    Event,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Range,
    RangeResult,
    StoreError,
    TxnResult,
    TxnTooLargeError,
    check_lease_ttl,
)
from waypost.store.outcome import Found, LearningStore, TxnOutcomeUnknownError, search

__all__ = [
    "DEFAULT_SERVER_PORT",
    "NO_SERVERS",
    "RemoteStore",
    "ServerRefusedError",
    "ServerTLS",
    "probe",
    "server_address",
]

log = logging.getLogger("waypost.store.remote")

_PREFIX = "/v1/internal/store"
_WATCH_WAIT = "30s"
_STREAM_SILENCE = 60.0
"""Seconds a replica stream may stay silent before its server is taken for gone: twice
the longest a live server leaves one without a frame (two of its progress intervals,
``api.internal.PROGRESS``)."""

DEFAULT_SERVER_PORT = 8300
"""Consul's server RPC port, where waypost servers serve the agent-to-server API."""

_BACKOFF = 0.05
"""Seconds between attempts on the next server (a transaction's: times the attempt)."""

_PROBE_TIMEOUT = 5.0

_Params = Mapping[str, str] | Sequence[tuple[str, str]]

NO_SERVERS = "No known Consul servers"
"""Consul's error for a request that needs a server when the agent knows none."""


class ServerRefusedError(StoreError):
    """A server's answer to a server action that refused it: its status and message, for
    the client agent to pass on as its own answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RemoteStore(LearningStore):
    _log = log

    def __init__(
        self,
        servers: Sequence[str] = (),
        *,
        timeout: float = 10.0,
        tls: ServerTLS | None = None,
        token: str = "",
        scope: Sequence[str] = (),
    ) -> None:
        """With ``tls`` every server is reached over TLS (``tls.internal_rpc``); ``token`` is
        the agent's ACL agent token, which servers with ACLs on require on this API.

        ``scope`` (``wire.in_scope``'s entries) makes the replica lean: the whole-store
        reads the state machine makes, ``range("")`` and ``watch("", …)``, hold only the keys
        in it, cut to it by the server, so what the agent holds and is sent does not grow
        with the catalog. Any other read, and the history a transaction's outcome is learnt
        from, is the whole store's."""
        super().__init__()
        self.scope = list(scope)
        self.servers: list[str] = []
        self.tls = tls
        self._headers = _token_headers(token)
        for address in servers:
            self.add_server(address)
        self._current = 0
        self._timeout = timeout
        self._http = HttpClient(tls=tls.context if tls else None, connect_timeout=timeout)
        self._closed = False

    def add_server(self, address: str) -> None:
        address = server_address(address)
        if address not in self.servers:
            self.servers.append(address)

    async def _request(
        self, server: str, method: str, path: str, *, body: bytes | None = None,
        params: _Params | None = None, read_timeout: float | None = None,
    ) -> tuple[int, bytes]:  # fmt: skip
        """One request to ``server``: its (status, body), whatever the status."""
        if self._closed:
            raise StoreError("store is closed")
        resp = await self._http.request(
            method,
            _url(server, path, self.tls, params),
            body=body,
            headers=self._headers,
            total=read_timeout or self._timeout,
            server_hostname=self.tls.server_name if self.tls else None,
        )
        return resp.status, await resp.read()

    def _moved_on(self, server: str, exc: Exception | str) -> None:
        log.debug("server %s failed: %s", server, exc)
        self._current += 1

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: _Params | None = None,
        read_timeout: float | None = None,
        body: bytes | None = None,
    ) -> tuple[int, bytes]:
        """One request, failing over across servers; (status, body) of the first that answers.
        Only for calls that are safe to repeat: never for a transaction (see ``txn``)."""
        if not self.servers:
            raise StoreError(NO_SERVERS)
        last: Exception | None = None
        for _ in range(len(self.servers) * 2):
            server = self.servers[self._current % len(self.servers)]
            try:
                status, payload = await self._request(
                    server, method, path, body=body, params=params, read_timeout=read_timeout
                )
                if _failed(status):
                    raise StoreError(f"{server}: {status} {payload[:200]!r}")
                return status, payload
            except (StoreError, OSError) as exc:
                if self._closed:
                    raise StoreError("store is closed") from exc
                last = exc
                self._moved_on(server, exc)
                await asyncio.sleep(_BACKOFF)
        raise StoreError(f"no server answered: {last}")

    async def server_action(self, path: str, body: bytes = b"", method: str = "POST") -> bytes:
        """A request only a server may answer (a Connect leaf's signature, the CA's
        configuration), failing over across servers as reads do, so it must be safe to
        repeat. Raises ServerRefusedError for a server's 4xx, StoreError when none answers."""
        status, payload = await self._call(method, path, body=body)
        if status != 200:
            raise ServerRefusedError(status, payload.decode(errors="replace").strip() or f"status {status}")
        return payload

    async def get(self, key: str) -> KeyValue | None:
        _, body = await self._call("GET", "/get", params={"key": key})
        return wire.decode_kv(body)

    async def range(self, prefix: str) -> RangeResult:
        params: _Params = {"prefix": prefix}
        if not prefix and self.scope:
            params = [("scope", entry) for entry in self.scope]
        _, body = await self._call("GET", "/range", params=params)
        result = wire.decode_range(body)
        self._saw(result.revision)
        return result

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        """Apply a transaction through a server, and never answer wrongly about one whose
        answer was lost.

        A transaction is sent to the next server only when it surely never reached one
        (the connection could not be made, or the server turned it away unread with a
        429). After it may have reached one (a timeout, a dropped connection, a 5xx: the
        server's own store may have failed after committing it), sending it again would
        evaluate its compares against its own writes, so its outcome is learnt first from
        the history the server keeps for client watches, after ``floor`` (the highest
        revision seen before sending), as ``outcome`` explains: if it applied its result
        is rebuilt from that revision, if not it is sent again. A final "failed" answer
        after such an interruption is checked the same way up to its own revision. When
        the history cannot tell (it is gone, too long, no server serves it, or the
        transaction held Range ops whose results cannot be read back through a server),
        ``TxnOutcomeUnknownError`` is raised rather than a guess.
        """
        if not self.servers:
            raise StoreError(NO_SERVERS)
        if max(len(compares), len(success), len(failure)) > wire.MAX_TXN_OPS:
            raise TxnTooLargeError(
                f"too many operations in txn request: the agent-to-server API takes {wire.MAX_TXN_OPS} "
                "(etcd's default); a server agent writes more in one",
                "--max-txn-ops",
            )
        body = wire.encode_txn_request(compares, success, failure)
        floor = await self._floor()
        interrupted = False
        last: Exception | str = NO_SERVERS
        for attempt in range(1, len(self.servers) * 2 + 1):
            server = self.servers[self._current % len(self.servers)]
            reached = True
            try:
                # POST: the HTTP client sends an idempotent method (PUT) again by itself when
                # a reused connection drops, which is the blind re-send this method avoids.
                status, payload = await self._request(server, "POST", "/txn", body=body)
                last = f"{server}: {status} {payload[:200]!r}"
            except ConnectError as exc:
                status, payload, last, reached = 0, b"", exc, False  # never connected, never sent
            except OSError as exc:
                status, payload, last = 0, b"", exc
            if status == 200:
                result = wire.decode_txn_result(payload)
                self._saw(result.revision)
                if interrupted and not result.succeeded:
                    return await self._applied(floor, success, failure, result.revision) or result
                return result
            if status and not _failed(status):
                if interrupted and (found := await self._applied(floor, success, failure)):
                    return found
                if status == 404:
                    raise LeaseNotFoundError("lease not found")
                if status == 413:
                    raise TxnTooLargeError(f"store transaction refused: {last}", "--max-request-bytes")
                raise StoreError(f"store transaction refused: {last}")
            self._moved_on(server, last)
            if reached and status != 429:
                interrupted = True
                log.info("transaction interrupted (%s); reading revisions after %d for it", last, floor)
                if found := await self._applied(floor, success, failure):
                    return found
            await asyncio.sleep(_BACKOFF * attempt)
        if interrupted:
            raise TxnOutcomeUnknownError(
                f"no server completed the transaction ({last}); it had not applied when last checked"
            )
        raise StoreError(f"no server answered: {last}")

    async def _find(
        self, start: int, until: int, success: Sequence[Op], failure: Sequence[Op]
    ) -> Found | None:
        try:
            async with asyncio.timeout(self._timeout):
                return await search(self._watch("", start), until, success, failure)
        except TimeoutError:
            raise StoreError(f"the history did not reach revision {until} in {self._timeout:g}s") from None

    async def _read_at(self, op: Range, revision: int) -> RangeResult:
        raise TxnOutcomeUnknownError(
            f"the transaction applied, but what its Range of {op.key!r} read at revision {revision} "
            "cannot be read back through a server"
        )

    async def revision(self) -> int:
        _, body = await self._call("GET", "/revision")
        return self._saw(wire.decode_number(body))

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        if not prefix and self.scope:
            return self._follow(start_revision)
        return self._watch(prefix, start_revision)

    async def _watch(self, prefix: str, start_revision: int) -> AsyncGenerator[list[Event], None]:
        start = start_revision if start_revision > 0 else await self.revision() + 1
        while not self._closed:
            params: list[tuple[str, str]] = [("from", str(start)), ("wait", _WATCH_WAIT)]
            try:
                status, body = await self._call("GET", "/watch", params=params, read_timeout=60.0)
            except StoreError:
                if self._closed:
                    return
                raise
            if status == 410:
                raise CompactedError(wire.decode_number(body))
            for batch in wire.decode_events(body):
                relevant = [ev for ev in batch if ev.kv.key.startswith(prefix)]
                start = self._saw(batch[-1].kv.mod_revision) + 1
                if relevant:
                    yield relevant

    async def _follow(self, start_revision: int) -> AsyncGenerator[list[Event], None]:
        """The lean replica's changes, by one stream from a server (``api.replica_feed``),
        resumed from the revision it brought us to on the next server after a cut. Raises
        StoreError when no server keeps a stream for ``len(servers) * 2`` attempts in a row,
        CompactedError when the history after that revision is gone."""
        start = start_revision if start_revision > 0 else await self.revision() + 1
        failures = 0
        while not self._closed:
            if not self.servers:
                raise StoreError(NO_SERVERS)
            server = self.servers[self._current % len(self.servers)]
            params = [("from", str(start)), *(("scope", entry) for entry in self.scope)]
            framed = False
            gone: int | None = None
            try:
                resp = await self._http.request(
                    "GET",
                    _url(server, "/stream", self.tls, params),
                    headers=self._headers,
                    total=None,
                    read_timeout=_STREAM_SILENCE,
                    server_hostname=self.tls.server_name if self.tls else None,
                )
                if resp.status == 410:
                    gone = wire.decode_number(await resp.read())
                elif resp.status != 200:
                    raise StoreError(f"{server}: {resp.status} {(await resp.read())[:200]!r}")
                else:
                    frames = wire.FrameReader()
                    async for chunk in resp.chunks():
                        for reached, batches in frames.feed(chunk):
                            framed = True
                            for batch in batches:
                                self._saw(batch[-1].kv.mod_revision)
                                yield batch
                            start = max(start, self._saw(reached) + 1)
            except (StoreError, OSError, ValueError) as exc:
                if self._closed:
                    return
                cause: Exception | str | None = exc
            else:
                if gone is not None:
                    raise CompactedError(gone)
                # The server ended the stream (its history was reset, or it is stopping):
                # from the same revision again, where a reset is answered 410.
                cause = None if framed else "the stream ended before its first frame"
            if cause is None:
                failures = 0
                continue
            failures = 1 if framed else failures + 1
            self._moved_on(server, cause)
            if failures >= len(self.servers) * 2:
                raise StoreError(f"no server answered: {cause}")
            await asyncio.sleep(_BACKOFF)

    async def _lease(self, action: str, params: _Params | None = None) -> tuple[int, bytes]:
        return await self._call("PUT", f"/lease/{action}", params=params)

    async def lease_grant(self, ttl: float) -> int:
        _, body = await self._lease("grant", {"ttl": f"{check_lease_ttl(ttl)}s"})
        return wire.decode_number(body)

    async def lease_keepalive(self, lease: int) -> float:
        status, body = await self._lease(f"keepalive/{lease}")
        if status == 404:
            raise LeaseNotFoundError(f"lease {lease} not found")
        return float(wire.decode_number(body))

    async def lease_revoke(self, lease: int) -> None:
        await self._lease(f"revoke/{lease}")

    async def close(self) -> None:
        self._closed = True
        await self._http.close()


@dataclass(frozen=True)
class ServerTLS:
    """How a client agent reaches servers over TLS: the context (CA, client certificate)
    and, with ``verify_server_hostname``, the name every server's certificate must carry
    (``server.<datacenter>.<domain>``) in place of the address dialled."""

    context: ssl.SSLContext
    server_name: str | None = None


def _token_headers(token: str) -> list[tuple[str, str]]:
    return [("X-Consul-Token", token)] if token else []


def _url(server: str, path: str, tls: ServerTLS | None, params: _Params | None = None) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return f"{'https' if tls else 'http'}://{server}{_PREFIX}{path}{query}"


def _failed(status: int) -> bool:
    """A server error, or a 429: past the server's per-client connection cap."""
    return status >= 500 or status == 429


def server_address(address: str) -> str:
    """``host[:port]`` of a server's agent-to-server listener, the port defaulting to 8300;
    raises ValueError naming what is wrong."""
    text = address.strip()
    host, port = text, str(DEFAULT_SERVER_PORT)
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid address {address!r}: expected host[:port] or [ipv6][:port]")
        port = rest[1:] or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(f"invalid address {address!r}: expected host[:port] or [ipv6][:port]") from None
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise ValueError(f"invalid address {address!r}: missing or malformed host")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid address {address!r}: port must be a number from 1 to 65535")
    return f"[{host}]:{int(port)}" if ":" in host else f"{host}:{int(port)}"


async def probe(address: str, tls: ServerTLS | None = None, token: str = "") -> None:
    """Join's check that ``address`` is a server's agent-to-server listener, with Serf's
    wording on failure: ``Failed to join <address>: <reason>`` (StoreError). A server
    certificate that does not verify is such a failure."""
    http = HttpClient(tls=tls.context if tls else None, connect_timeout=_PROBE_TIMEOUT)
    try:
        resp = await http.request(
            "GET",
            _url(address, "/revision", tls),
            headers=_token_headers(token),
            total=_PROBE_TIMEOUT,
            server_hostname=tls.server_name if tls else None,
        )
        body = await resp.read()
        content_type = (resp.header("Content-Type") or "").partition(";")[0].strip().lower()
        if resp.status != 200 or content_type != "application/msgpack":
            reason = f"not a server's agent-to-server address (answered {resp.status})"
            raise StoreError(f"Failed to join {address}: {reason}")
        wire.decode_number(body)
    except ConnectError as exc:
        cause = exc.cause
        if exc.tls or isinstance(exc, TimeoutError):
            reason = str(exc)
        elif isinstance(cause, socket.gaierror):
            reason = f"dial tcp: lookup {exc.host}: no such host"
        elif cause.errno:
            reason = f"dial tcp {address}: connect: {os.strerror(cause.errno).lower()}"
        else:
            reason = str(exc)
        raise StoreError(f"Failed to join {address}: {reason}") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"Failed to join {address}: {exc or type(exc).__name__}") from None
    finally:
        await http.close()
