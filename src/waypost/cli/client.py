"""The commands' HTTP client: where the agent is, which token, and Consul's error wording.

Built on ``http.client`` so that ``waypost kv get`` starts in milliseconds; a new
connection per request keeps it safe to share between the lock command's threads.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from waypost.cli import ui
from waypost.cli.flags import Parsed
from waypost.tlsutil import ClientTLS, TLSSetupError, env_flag

__all__ = [
    "Client",
    "ClientError",
    "Query",
    "QueryValue",
    "Response",
    "StatusError",
    "client_from",
    "client_or_report",
]

DEFAULT_ADDR = "127.0.0.1:8500"

QueryValue = str | int | bool | None
#: A mapping, or pairs when a parameter repeats (``node-meta``, ``tag``).
Query = Mapping[str, QueryValue] | Sequence[tuple[str, QueryValue]]
#: A request body: bytes, or a file sent as it is read (chunked), for a snapshot of any size.
Body = bytes | IO[bytes] | None


class ClientError(Exception):
    """The agent could not be reached or answered with an error; ``str`` is the reason."""


class StatusError(ClientError):
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        super().__init__(f"Unexpected response code: {status} ({body.decode(errors='replace').strip()})")


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def index(self) -> int:
        try:
            return int(self.headers.get("x-consul-index", "0"))
        except ValueError:
            return 0

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _env(*names: str) -> str:
    for name in names:
        value = os.environ.get(name, "")
        if value:
            return value
    return ""


class _HTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection that sends and verifies ``server_name`` (``-tls-server-name``)
    in place of the address's host, which is often an IP the certificate does not name."""

    def __init__(
        self, hostport: str, timeout: float | None, context: ssl.SSLContext, server_name: str
    ) -> None:
        super().__init__(hostport, timeout=timeout, context=context)
        self._tls = context
        self._server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_name or self.host)


class Client:
    """Requests to one agent; ``datacenter`` and ``stale`` ride along on every call as Consul's api does."""

    def __init__(
        self,
        address: str = "",
        token: str = "",
        datacenter: str = "",
        stale: bool = False,
        tls: ClientTLS | None = None,
    ) -> None:
        address = address or _env("WAYPOST_HTTP_ADDR", "CONSUL_HTTP_ADDR") or DEFAULT_ADDR
        scheme = "http"
        if "://" in address:
            scheme, _, address = address.partition("://")
        elif env_flag("CONSUL_HTTP_SSL", False):
            scheme = "https"
        if scheme not in ("http", "https"):
            raise ClientError(f"Unknown protocol scheme: {scheme}")
        self.scheme = scheme
        self.hostport = address.rstrip("/")
        self.token = token
        self.datacenter = datacenter
        self.stale = stale
        self.tls = tls or ClientTLS.from_flags({})
        try:
            self._context = self.tls.context() if scheme == "https" else None
        except TLSSetupError as exc:
            raise ClientError(f"Error creating TLS config: {exc}") from None

    def url(self, path: str, query: Query | None = None) -> str:
        params: list[tuple[str, str]] = []
        if self.datacenter:
            params.append(("dc", self.datacenter))
        if self.stale:
            params.append(("stale", ""))
        pairs = list(query.items()) if isinstance(query, Mapping) else list(query or ())
        for key, value in pairs:
            if value is None or value is False:
                continue
            params.append((key, "" if value is True else str(value)))
        encoded = "&".join(
            urllib.parse.quote(k) + ("=" + urllib.parse.quote(v, safe="") if v else "") for k, v in params
        )
        return urllib.parse.quote(path, safe="/:@") + ("?" + encoded if encoded else "")

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._context is not None:
            return _HTTPSConnection(self.hostport, timeout, self._context, self.tls.server_name)
        return http.client.HTTPConnection(self.hostport, timeout=timeout)

    def _send(
        self, method: str, path: str, query: Query | None, body: Body, timeout: float | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        target = self.url(path, query)
        headers = {"User-Agent": "waypost-cli"}
        if self.token:
            headers["X-Consul-Token"] = self.token
        conn = self._connect(timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            where = f"{self.scheme}://{self.hostport}{target}"
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise ClientError(f'{method.title()} "{where}": dial tcp {self.hostport}: {reason}') from None

    def request(
        self,
        method: str,
        path: str,
        query: Query | None = None,
        body: Body = None,
        *,
        timeout: float | None = 330.0,
        allow: tuple[int, ...] = (200,),
    ) -> Response:
        conn, resp = self._send(method, path, query, body, timeout)
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ClientError(f"reading response: {exc}") from None
        finally:
            conn.close()
        if resp.status not in allow:
            raise StatusError(resp.status, data)
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def get(self, path: str, query: Query | None = None, **kw: Any) -> Response:
        return self.request("GET", path, query, **kw)

    def put(self, path: str, query: Query | None = None, body: Body = None, **kw: Any) -> Response:
        return self.request("PUT", path, query, body, **kw)

    def delete(self, path: str, query: Query | None = None, **kw: Any) -> Response:
        return self.request("DELETE", path, query, **kw)

    def stream(self, path: str, query: Query | None = None) -> Iterator[bytes]:
        """Lines of a streaming GET (``/v1/agent/monitor``) as they arrive."""
        conn, resp = self._send("GET", path, query, None, None)
        try:
            if resp.status != 200:
                raise StatusError(resp.status, resp.read())
            while True:
                line = resp.readline()
                if not line:
                    return
                yield line
        finally:
            conn.close()

    def node_name(self) -> str:
        """What Consul's commands ask first, to fail early with a clear error."""
        body = self.get("/v1/agent/self").json()
        return str(body.get("Config", {}).get("NodeName", ""))


def client_from(parsed: Parsed) -> Client:
    """A client from the shared HTTP flags (flags win over the environment)."""
    values = parsed.values
    token = str(values.get("token") or "")
    token_file = str(values.get("token-file") or "") or _env("CONSUL_HTTP_TOKEN_FILE")
    if not token and token_file:
        try:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as exc:
            raise ClientError(f"Error loading token file: {exc}") from None
    token = token or _env("WAYPOST_HTTP_TOKEN", "CONSUL_HTTP_TOKEN")
    return Client(
        address=str(values.get("http-addr") or ""),
        token=token,
        datacenter=str(values.get("datacenter") or ""),
        stale=bool(values.get("stale")),
        tls=ClientTLS.from_flags(values),
    )


def client_or_report(parsed: Parsed, failure: str = "Error connecting to Consul agent") -> Client | None:
    """The command's client, or None once Consul's error line for a bad address, token or
    TLS setting is printed (the caller then exits 1)."""
    try:
        return client_from(parsed)
    except ClientError as exc:
        ui.error(f"{failure}: {exc}")
        return None


def connect(parsed: Parsed) -> tuple[Client, str] | None:
    """A client and the agent's node name, or None once the error is reported: the first
    step of every command that talks to the agent more than once, as in Consul."""
    try:
        client = client_from(parsed)
        return client, client.node_name()
    except ClientError as exc:
        ui.error(f"Error querying Consul agent: {exc}")
        return None


def agent_action(parsed: Parsed, path: str, failure: str, success: str) -> int:
    """``leave``, ``reload``: one PUT to the agent, one line of outcome, Consul's exit codes."""
    try:
        client_from(parsed).put(path)
    except ClientError as exc:
        ui.error(f"{failure}: {exc}")
        return 1
    ui.output(success)
    return 0
