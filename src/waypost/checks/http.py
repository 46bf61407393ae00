"""HTTP checks: 2xx passing, 429 warning, anything else (or no answer) critical.

All HTTP checks share two clients of ``waypost.http_client`` (certificates verified or
not), so ten thousand checks cost two TLS contexts rather than ten thousand. Like Consul
it does not keep connections alive between runs: a pooled socket could hide that the
listener has gone, and a check must open a fresh connection to mean anything. Redirects
are followed as Go's client follows them (at most 10; 301, 302 and 303 turn the request
into a GET without its body, 307 and 308 repeat it), unless ``DisableRedirects``.
"""

from __future__ import annotations

import base64
import contextlib
from http import HTTPStatus
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from waypost.checks._net import describe_error, dial_error, tls_context
from waypost.checks.base import DEFAULT_OUTPUT_MAX_SIZE, CheckResult, TailBuffer
from waypost.checks.definition import CheckDefinition
from waypost.http_client import ConnectError, HttpClient, Response, ServerDisconnectedError
from waypost.state.model import CheckStatus

__all__ = ["USER_AGENT", "HttpCheck"]

USER_AGENT = "Consul Health Check"
_ACCEPT = "text/plain, text/*, */*"
_MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SAFE_PATH = "/%!$&'()*+,;=:@-._~"


class HttpCheck:
    default_timeout = 10.0

    def __init__(self) -> None:
        self._clients: dict[bool, HttpClient] = {}

    def _client(self, skip_verify: bool) -> HttpClient:
        if skip_verify not in self._clients:
            self._clients[skip_verify] = HttpClient(
                tls=tls_context(skip_verify), connect_timeout=None, keep_alive=False
            )
        return self._clients[skip_verify]

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        method = (definition.method or "GET").upper()
        url = definition.http
        headers = [(name, value) for name, values in definition.header.items() for value in values]
        given = {name.lower() for name, _ in headers}
        defaults = [("User-Agent", USER_AGENT), ("Accept", _ACCEPT), *_basic_auth(url)]
        headers += [(k, v) for k, v in defaults if k.lower() not in given]
        body = TailBuffer(definition.output_max_size or DEFAULT_OUTPUT_MAX_SIZE)
        try:
            response = await self._follow(definition, method, headers)
            async for chunk in response.chunks():
                body.write(chunk)
            code = response.status
            reason = response.reason or _phrase(code)
        except (OSError, ValueError) as exc:
            return CheckResult(CheckStatus.CRITICAL, f'{_go_op(method)} "{url}": {_describe(exc)}')
        output = f"HTTP {method} {url}: {code} {reason} Output: {body.text()}"
        if 200 <= code <= 299:
            return CheckResult(CheckStatus.PASSING, output)
        if code == HTTPStatus.TOO_MANY_REQUESTS:
            return CheckResult(CheckStatus.WARNING, output)
        return CheckResult(CheckStatus.CRITICAL, output)

    async def _follow(
        self, definition: CheckDefinition, method: str, headers: list[tuple[str, str]]
    ) -> Response:
        """The answer, after the redirects Go's client would follow."""
        client = self._client(definition.tls_skip_verify)
        url = _encoded(definition.http)
        data = definition.body.encode() if definition.body else None
        for _ in range(_MAX_REDIRECTS + 1):
            response = await client.request(
                method, url, headers=headers, body=data, server_hostname=definition.tls_server_name or None
            )
            location = response.header("Location")
            if definition.disable_redirects or response.status not in _REDIRECTS or not location:
                return response
            response.close()
            target = _encoded(urljoin(url, location))
            if urlsplit(target).netloc != urlsplit(url).netloc:
                headers = [(k, v) for k, v in headers if k.lower() != "host"]
            url = target
            if response.status in (301, 302, 303) and method != "HEAD":
                method, data = "GET", None
        raise ValueError(f"stopped after {_MAX_REDIRECTS} redirects")

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        method = (definition.method or "GET").upper()
        return CheckResult(
            CheckStatus.CRITICAL,
            f'{_go_op(method)} "{definition.http}": context deadline exceeded '
            "(Client.Timeout exceeded while awaiting headers)",
        )

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


def _encoded(url: str) -> str:
    """``url`` with what may not be sent as is percent-encoded, as Go's client sends it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f'unsupported protocol scheme "{parts.scheme}"')
    path = quote(parts.path, safe=_SAFE_PATH)
    return urlunsplit((parts.scheme, parts.netloc, path, quote(parts.query, safe=_SAFE_PATH + "?"), ""))


def _basic_auth(url: str) -> list[tuple[str, str]]:
    """Credentials in the URL's user part, sent as Go sends them: HTTP Basic."""
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            return [("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())]
    return []


def _go_op(method: str) -> str:
    """Go's ``url.Error`` names the operation "Get", "Post", ..."""
    return method[:1] + method[1:].lower()


def _phrase(code: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(code).phrase
    return ""


def _describe(exc: BaseException) -> str:
    """Go's wording for what went wrong below HTTP (dial, TLS) or in it (redirects)."""
    if isinstance(exc, ConnectError):
        return dial_error("tcp", f"{exc.host}:{exc.port}", exc.cause)
    if isinstance(exc, ServerDisconnectedError):
        return "EOF"
    return describe_error(exc)
