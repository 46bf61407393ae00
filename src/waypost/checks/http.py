"""HTTP checks: 2xx passing, 429 warning, anything else (or no answer) critical.

All HTTP checks share one aiohttp session, so ten thousand checks cost one connector,
one DNS cache and two TLS contexts rather than ten thousand of each. Like Consul it
does not keep connections alive between runs: a pooled socket could hide that the
listener has gone, and a check must open a fresh connection to mean anything.
"""

from __future__ import annotations

import contextlib
from http import HTTPStatus

import aiohttp
from multidict import CIMultiDict

from waypost.checks._net import describe_error, dial_error, tls_context
from waypost.checks.base import DEFAULT_OUTPUT_MAX_SIZE, CheckResult, TailBuffer
from waypost.checks.definition import CheckDefinition
from waypost.state.model import CheckStatus

__all__ = ["USER_AGENT", "HttpCheck"]

USER_AGENT = "Consul Health Check"
_ACCEPT = "text/plain, text/*, */*"
_READ_SIZE = 64 * 1024


class HttpCheck:
    """One lazily opened session, created inside the running loop as aiohttp requires."""

    default_timeout = 10.0

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True),
                timeout=aiohttp.ClientTimeout(total=None),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def probe(self, definition: CheckDefinition) -> CheckResult:
        method = (definition.method or "GET").upper()
        url = definition.http
        headers: CIMultiDict[str] = CIMultiDict()
        for name, values in definition.header.items():
            for value in values:
                headers.add(name, value)
        headers.setdefault("User-Agent", USER_AGENT)
        headers.setdefault("Accept", _ACCEPT)
        body = TailBuffer(definition.output_max_size or DEFAULT_OUTPUT_MAX_SIZE)
        try:
            async with self._client().request(
                method,
                url,
                headers=headers,
                data=definition.body.encode() if definition.body else None,
                allow_redirects=not definition.disable_redirects,
                ssl=tls_context(definition.tls_skip_verify),
                server_hostname=definition.tls_server_name or None,
            ) as response:
                async for chunk in response.content.iter_chunked(_READ_SIZE):
                    body.write(chunk)
                code = response.status
                reason = response.reason or _phrase(code)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return CheckResult(CheckStatus.CRITICAL, f'{_go_op(method)} "{url}": {_describe(exc)}')
        output = f"HTTP {method} {url}: {code} {reason} Output: {body.text()}"
        if 200 <= code <= 299:
            return CheckResult(CheckStatus.PASSING, output)
        if code == HTTPStatus.TOO_MANY_REQUESTS:
            return CheckResult(CheckStatus.WARNING, output)
        return CheckResult(CheckStatus.CRITICAL, output)

    def on_timeout(self, definition: CheckDefinition, timeout: float) -> CheckResult:
        method = (definition.method or "GET").upper()
        return CheckResult(
            CheckStatus.CRITICAL,
            f'{_go_op(method)} "{definition.http}": context deadline exceeded '
            "(Client.Timeout exceeded while awaiting headers)",
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _go_op(method: str) -> str:
    """Go's ``url.Error`` names the operation "Get", "Post", ..."""
    return method[:1] + method[1:].lower()


def _phrase(code: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(code).phrase
    return ""


def _describe(exc: BaseException) -> str:
    """Go's wording for what went wrong below HTTP (dial, TLS) or in it (redirects)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        address = f"{exc.host}:{exc.port}"
        cause = (
            exc.certificate_error
            if isinstance(exc, aiohttp.ClientConnectorCertificateError)
            else exc.os_error
        )
        return dial_error("tcp", address, cause)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"stopped after {len(exc.history)} redirects"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "EOF"
    return describe_error(exc)
