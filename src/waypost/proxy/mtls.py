"""A Connect service's TLS material, followed live: its leaf and the trusted roots.

Both come from the agent's HTTP API as blocking queries (``/v1/agent/connect/ca/leaf/<service>``
and ``/v1/agent/connect/ca/roots``), so a renewed leaf or a rotated root is in force for
the next handshake: the server context a listener was created with hands every new
handshake to the newest one (through the SNI callback, which runs before the certificate
is chosen), and upstream connections ask for the client context each time. Connections
already open keep the session they negotiated, so a rotation cuts none of them. A sidecar
whose destination changes ``switch``es to the new service's leaf the same way.

Identities are SPIFFE URIs in the certificates' SAN; hostnames play no part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import tempfile
from typing import Any
from urllib.parse import quote

from waypost.client import ApiClient, ApiError

__all__ = ["Certificates", "peer_uri"]

log = logging.getLogger("waypost.proxy")


def peer_uri(transport: asyncio.BaseTransport) -> tuple[str, str]:
    """The peer certificate's SPIFFE URI and serial (hex), or empty strings without one."""
    obj = transport.get_extra_info("ssl_object")
    cert: Any = obj.getpeercert() if obj is not None else None
    if not cert:
        return "", ""
    uris = [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]
    return (uris[0] if uris else ""), str(cert.get("serialNumber", ""))


def _contexts(leaf: dict[str, Any], roots: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The server and the client context of one leaf."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=roots)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=roots)
    for ctx in (server, client):
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
    # The ssl module loads a certificate and key only from files: a private directory that
    # lives for the duration of the load, written once for both contexts.
    with tempfile.TemporaryDirectory(prefix="waypost-leaf-") as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, text in ((cert_path, leaf["CertPEM"]), (key_path, leaf["PrivateKeyPEM"])):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        for ctx in (server, client):
            ctx.load_cert_chain(cert_path, key_path)
    return server, client


class Certificates:
    """``server`` and ``client`` SSL contexts for ``service``, rebuilt on every change."""

    def __init__(self, api: ApiClient, service: str, *, wait: str = "5m") -> None:
        self.api = api
        self.service = service
        self.wait = wait
        self._leaf: dict[str, Any] | None = None
        self._roots = ""
        self._server: ssl.SSLContext | None = None
        self._client: ssl.SSLContext | None = None
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.changes = 0
        """How many times the contexts were rebuilt (status and tests)."""
        self._changed = asyncio.Event()

    async def start(self) -> None:
        """Follow the leaf and the roots; return once both arrived (bound it with a timeout)."""
        self._tasks = [
            self._follow_leaf(),
            asyncio.create_task(self._follow("/v1/agent/connect/ca/roots", self._set_roots), name="ca roots"),
        ]
        await self._ready.wait()

    def _follow_leaf(self) -> asyncio.Task[None]:
        leaf_path = "/v1/agent/connect/ca/leaf/" + quote(self.service, safe="")
        return asyncio.create_task(self._follow(leaf_path, self._set_leaf), name=f"leaf {self.service}")

    async def switch(self, service: str) -> None:
        """Present ``service``'s leaf from now on (a sidecar whose destination changed);
        return once it is in force (bound it with a timeout). Until then handshakes keep
        the previous one."""
        if service != self.service:  # else a switch that timed out before: wait again
            old = self._tasks[0]
            old.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await old
            self.service = service
            self._tasks[0] = self._follow_leaf()
        while self._leaf is None or self._leaf.get("Service", service) != service:
            await self._changed.wait()

    async def _follow(self, path: str, apply: Any) -> None:
        while True:
            try:
                async for resp in self.api.watch(path, wait=self.wait):
                    apply(resp.json())
            except ApiError as exc:
                log.error("%s: %s; retrying", path, exc.message)
                await asyncio.sleep(1.0)

    def _set_leaf(self, leaf: Any) -> None:
        if (
            isinstance(leaf, dict)
            and leaf.get("CertPEM")
            and leaf.get("PrivateKeyPEM")
            and leaf.get("Service", self.service) == self.service
        ):
            self._leaf = leaf
            self._rebuild()

    def _set_roots(self, roots: Any) -> None:
        pems = [r.get("RootCert", "") for r in (roots or {}).get("Roots") or [] if isinstance(r, dict)]
        if pems:
            self._roots = "".join(p if p.endswith("\n") else p + "\n" for p in pems)
            self._rebuild()

    def _rebuild(self) -> None:
        if self._leaf is None or not self._roots:
            return
        try:
            server, client = _contexts(self._leaf, self._roots)
        except (ssl.SSLError, ValueError) as exc:
            log.error("%s: unusable certificate from the agent: %s", self.service, exc)
            return
        server.sni_callback = self._newest
        self._server, self._client = server, client
        self.changes += 1
        self._changed.set()
        self._changed = asyncio.Event()
        log.info("%s: certificate %s in force", self.service, self._leaf.get("SerialNumber", "?"))
        self._ready.set()

    def _newest(self, obj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        """Every handshake uses the newest certificate, whichever context the listener has."""
        if self._server is not None and ctx is not self._server:
            obj.context = self._server

    async def rebuilt(self, count: int) -> None:
        """Return once the contexts have been rebuilt ``count`` times in all."""
        while self.changes < count:
            await self._changed.wait()

    @property
    def server(self) -> ssl.SSLContext:
        assert self._server is not None, "certificates not started"
        return self._server

    def client(self) -> ssl.SSLContext:
        assert self._client is not None, "certificates not started"
        return self._client

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
