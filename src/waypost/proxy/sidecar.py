"""``waypost proxy -sidecar-for <id>``: Connect's built-in sidecar proxy, as ``consul connect proxy``.

The sidecar's registration (``/v1/agent/service/<id>``, kind ``connect-proxy``) says it all:
its public listener (the registration's port, on ``Proxy.Config.bind_address``, 0.0.0.0 by
default as Consul's) terminates mTLS with the destination service's leaf and relays to the
local service (``Proxy.LocalServiceAddress``/``Port``, else the destination's registration);
each ``Proxy.Upstreams`` entry gets a plain listener on ``LocalBindAddress:LocalBindPort``
whose connections go out over mTLS to the destination's sidecars, found through
``/v1/health/connect/<name>``. Everything goes through the agent's HTTP API.

Every inbound connection is authorized after its handshake for the client certificate's URI
(``authorize.Authorizer``: the agent's decisions, kept until an intention changes), so a
changed intention applies to the next connection; an upstream whose certificate is not the
destination service's is refused. The registration is followed too (a blocking read on its
content hash): upstreams added or removed open or close their listeners, a new port or local
service moves the public listener, and a new destination service switches the leaf presented,
the intentions applied and the public listener, without a restart. The listeners and
balancing are the built-in proxy's (``tcp.py``, ``pool.py``), with TLS added.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from waypost.client import ApiClient, ApiError, Backoff
from waypost.durations import parse_duration
from waypost.proxy.authorize import Authorizer
from waypost.proxy.config import ListenerConfig, OutlierConfig, split_hostport
from waypost.proxy.mtls import Certificates, peer_uri
from waypost.proxy.outlier import OutlierDetector
from waypost.proxy.pool import Pool
from waypost.proxy.tcp import TcpListener, Tls
from waypost.proxy.upstreams import Selector, Upstream, UpstreamUpdate, UpstreamWatcher

__all__ = ["Sidecar", "SidecarConfig", "SidecarError"]

log = logging.getLogger("waypost.proxy")

DEFAULT_BIND = "0.0.0.0"
CERTIFICATE_WAIT = 30.0
"""Seconds start-up waits for the first leaf and roots."""


UpstreamSpec = tuple[str, str, str, int]
"""An upstream of the registration: (destination name, datacenter, local bind address, port)."""


class SidecarError(Exception):
    """The registration cannot be proxied (missing, not a connect-proxy, no port); names why."""


@dataclass(frozen=True, slots=True)
class SidecarConfig:
    """What the proxy needs from the sidecar's registration."""

    proxy_id: str
    destination: str
    bind: str
    port: int
    local_address: str
    local_port: int
    upstreams: tuple[UpstreamSpec, ...]

    @classmethod
    def from_registration(cls, proxy_id: str, svc: Any, parent: Any) -> SidecarConfig:
        """From ``/v1/agent/service/<id>`` answers for the sidecar and its destination."""
        if not isinstance(svc, dict) or svc.get("Kind") != "connect-proxy":
            raise SidecarError(f"service {proxy_id!r} is not a connect-proxy registration")
        proxy = svc.get("Proxy") or {}
        destination = proxy.get("DestinationServiceName") or ""
        if not destination:
            raise SidecarError(f"service {proxy_id!r} has no Proxy.DestinationServiceName")
        if not svc.get("Port"):
            raise SidecarError(f"service {proxy_id!r} has no port to listen on")
        parent = parent if isinstance(parent, dict) else {}
        local_port = proxy.get("LocalServicePort") or parent.get("Port") or 0
        if not local_port:
            raise SidecarError(f"service {proxy_id!r}: no Proxy.LocalServicePort and no destination port")
        upstreams = []
        for up in proxy.get("Upstreams") or []:
            if (up.get("DestinationType") or "service") != "service" or not up.get("LocalBindPort"):
                log.warning("%s: upstream %r skipped: only services on a local port are proxied",
                            proxy_id, up.get("DestinationName"))  # fmt: skip
                continue
            address = up.get("LocalBindAddress") or "127.0.0.1"
            upstreams.append(
                (up["DestinationName"], up.get("Datacenter") or "", address, int(up["LocalBindPort"]))
            )
        return cls(
            proxy_id=proxy_id,
            destination=destination,
            bind=str((proxy.get("Config") or {}).get("bind_address") or DEFAULT_BIND),
            port=int(svc["Port"]),
            local_address=proxy.get("LocalServiceAddress") or "127.0.0.1",
            local_port=int(local_port),
            upstreams=tuple(upstreams),
        )

    @classmethod
    def from_flags(cls, service: str, listen: str, service_addr: str, upstreams: list[str]) -> SidecarConfig:
        """``consul connect proxy -service web [-listen ip:port -service-addr ip:port]
        [-upstream db:9191]...``: a proxy nobody registered. Raises SidecarError or ConfigError."""
        if listen and not service_addr:
            raise SidecarError(
                "-service-addr must be specified with -listen so the proxy knows the backend service address"
            )
        bind, port = split_hostport(listen, "-listen") if listen else (DEFAULT_BIND, 0)
        local, local_port = split_hostport(service_addr, "-service-addr") if service_addr else ("", 0)
        specs = []
        for text in upstreams:
            name, _, raw_port = text.rpartition(":")
            if not name or not raw_port.isdigit() or not 0 < int(raw_port) <= 65535:
                raise SidecarError(f"Error parsing upstream {text!r}: expected name:port")
            specs.append((name, "", "127.0.0.1", int(raw_port)))
        return cls("", service, bind, port, local, local_port, tuple(specs))


class Sidecar:
    def __init__(
        self,
        api: ApiClient,
        service_id: str,
        *,
        wait: str = "5m",
        rng: random.Random | None = None,
        config: SidecarConfig | None = None,
    ) -> None:
        """``service_id`` names the registered sidecar to follow; or ``config`` (from flags)
        says everything and nothing is read from the agent but certificates and upstreams."""
        self.api = api
        self.service_id = service_id
        """The ID ``-sidecar-for`` names: the service's, or its sidecar's."""
        self.proxy_id = ""
        self.wait = wait
        self.rng = rng
        self.config = config
        self.certificates: Certificates | None = None
        self.authorizer: Authorizer | None = None
        self.watcher = UpstreamWatcher(api, wait=wait)
        self.watcher.on_update(self._apply)
        self.inbound: TcpListener | None = None
        self.upstreams: dict[UpstreamSpec, tuple[Selector, TcpListener]] = {}
        self.refused = 0
        """Inbound connections refused by intention since start."""
        self._follow: asyncio.Task[None] | None = None

    async def _read(self, service_id: str, query: Any = None) -> tuple[Any, str]:
        """A registration and its content hash; None for an unknown ID. With ``query``'s
        ``hash`` and ``wait``, a blocking read until the registration changes."""
        timeout = parse_duration(self.wait) * 1.1 + 15 if query else None
        path = "/v1/agent/service/" + quote(service_id, safe="")
        resp = await self.api.request("GET", path, query=query, read_timeout=timeout)
        if resp.status == 404:
            return None, ""
        if resp.status >= 400:
            raise SidecarError(
                f"reading service {service_id!r}: {resp.status} {resp.body.decode(errors='replace')}"
            )
        return resp.json(), resp.headers.get("X-Consul-Contenthash", "")

    async def _config(self, svc: Any) -> SidecarConfig:
        parent_id = (svc.get("Proxy") or {}).get("DestinationServiceID") or ""
        parent = (await self._read(parent_id))[0] if parent_id else None
        return SidecarConfig.from_registration(self.proxy_id, svc, parent)

    async def _proxy_id(self) -> str:
        """The sidecar registered for the service ID given, as ``consul connect proxy
        -sidecar-for`` finds it; a connect-proxy's own ID is taken as it is."""
        services = (await self.api.get("/v1/agent/services")).json() or {}
        found: list[str] = sorted(
            sid for sid, svc in services.items()
            if svc.get("Kind") == "connect-proxy"
            and (svc.get("Proxy") or {}).get("DestinationServiceID") == self.service_id
        )  # fmt: skip
        if len(found) > 1:
            listed = "\n".join(f"    - {sid}" for sid in found)
            raise SidecarError(
                f"More than one sidecar proxy registered for {self.service_id}.\n"
                f"    Start the proxy with the ID of one of them:\n{listed}"
            )
        if found:
            return found[0]
        if (services.get(self.service_id) or {}).get("Kind") == "connect-proxy":
            return self.service_id
        raise SidecarError(f"No sidecar proxy registered for {self.service_id}")

    async def start(self) -> None:
        digest = ""
        if self.config is None:
            try:
                self.proxy_id = await self._proxy_id()
                svc, digest = await self._read(self.proxy_id)
                if svc is None:
                    raise SidecarError(f"No sidecar proxy registered for {self.service_id}")
                self.config = await self._config(svc)
            except ApiError as exc:
                raise SidecarError(str(exc)) from None
        config = self.config
        self.certificates = Certificates(self.api, config.destination, wait=self.wait)
        self.authorizer = Authorizer(self.api, config.destination, wait=self.wait)
        self.authorizer.start()
        try:
            async with asyncio.timeout(CERTIFICATE_WAIT):
                await self.certificates.start()
            if config.port:
                await self._open_inbound(config, self.certificates)
            for upstream in config.upstreams:
                await self._open_upstream(upstream, self.certificates)
        except TimeoutError:
            await self.close()
            raise SidecarError(
                f"{config.destination}: no certificate from the agent (is Connect enabled?)"
            ) from None
        except BaseException:
            await self.close()
            raise
        if self.proxy_id:
            self._follow = asyncio.create_task(
                self._follow_registration(digest), name=f"sidecar {self.proxy_id}"
            )

    async def _follow_registration(self, digest: str) -> None:
        backoff = Backoff()
        while True:
            try:
                svc, new = await self._read(self.proxy_id, {"hash": digest, "wait": self.wait})
                if svc is None:
                    raise SidecarError(f"{self.proxy_id} is no longer registered")
                if new and new != digest:
                    await self._reconfigure(await self._config(svc))
                    digest = new
                backoff.reset()
                if new:
                    continue
            except (ApiError, SidecarError) as exc:
                log.warning("%s; keeping the listeners as they are", exc)
            await asyncio.sleep(backoff.next())

    async def _reconfigure(self, config: SidecarConfig) -> None:
        old, certs, authorizer = self.config, self.certificates, self.authorizer
        assert old is not None
        assert certs is not None
        assert authorizer is not None
        if config.destination != old.destination:
            try:
                async with asyncio.timeout(CERTIFICATE_WAIT):
                    await certs.switch(config.destination)
            except TimeoutError:
                raise SidecarError(f"{config.destination}: no certificate from the agent") from None
            await authorizer.retarget(config.destination)
            log.info("%s: now the sidecar of %s", self.proxy_id, config.destination)
        if (config.destination, config.bind, config.port, config.local_address, config.local_port) != (
            old.destination, old.bind, old.port, old.local_address, old.local_port,
        ):  # fmt: skip
            if self.inbound is not None:
                await self.inbound.close(drain=self.inbound.pool.listener.drain_timeout)
                self.inbound = None
            await self._open_inbound(config, certs)
        for upstream in set(old.upstreams) - set(config.upstreams):
            selector, plane = self.upstreams.pop(upstream)
            self.watcher.release(selector)
            await plane.close(drain=plane.pool.listener.drain_timeout)
            log.info("upstream %s: closed (left the registration)", upstream[0])
        for upstream in config.upstreams:
            if upstream not in self.upstreams:
                await self._open_upstream(upstream, certs)
        self.config = config

    async def _listen(self, plane: TcpListener) -> TcpListener:
        try:
            await plane.start()
        except OSError as exc:
            raise SidecarError(f"{plane.pool.listener.name}: cannot listen: {exc.strerror or exc}") from None
        return plane

    async def _open_inbound(self, config: SidecarConfig, certs: Certificates) -> None:
        listener = ListenerConfig(config.destination, config.bind, config.port)
        pool = Pool(listener, OutlierDetector(OutlierConfig()), self.rng)
        local = Upstream(config.local_address, config.local_port, 1, "", config.destination)
        pool.update(UpstreamUpdate(Selector(config.destination), 1, (local,)))
        tls = Tls(server=certs.server, admit=self._admit)
        self.inbound = await self._listen(TcpListener(pool, tls))
        log.info("%s: mTLS on %s:%d -> %s", config.destination, config.bind, self.inbound.port, local.target)

    async def _open_upstream(self, upstream: UpstreamSpec, certs: Certificates) -> None:
        name, dc, address, port = upstream
        selector = Selector(name, datacenter=dc, connect=True)
        pool = Pool(
            ListenerConfig(name, address, port, datacenter=dc), OutlierDetector(OutlierConfig()), self.rng
        )
        suffix = f"/svc/{name}"

        def verify(transport: asyncio.Transport) -> bool:
            uri, _ = peer_uri(transport)
            if not uri.endswith(suffix):
                log.warning("upstream %s: refusing an instance whose certificate is %r", name, uri)
                return False
            return True

        plane = await self._listen(TcpListener(pool, Tls(client=certs.client, verify_upstream=verify)))
        self.upstreams[upstream] = (selector, plane)
        current = self.watcher.current(selector)
        if current is not None:
            pool.update(current)
        self.watcher.watch(selector)
        log.info("upstream %s: listening on %s:%d", name, address, plane.port)

    def _apply(self, update: UpstreamUpdate) -> None:
        for selector, plane in self.upstreams.values():
            if selector == update.selector:
                plane.pool.update(update)

    async def _admit(self, transport: asyncio.Transport) -> bool:
        assert self.authorizer is not None
        uri, serial = peer_uri(transport)
        allowed, reason = await self.authorizer.allowed(uri, serial)
        if allowed:
            return True
        self.refused += 1
        log.info("%s: refused %s: %s", self.authorizer.destination, uri or "a client without a URI", reason)
        return False

    def status(self) -> dict[str, Any]:
        listeners = [
            {"Service": sel.service, "Bind": f"{p.pool.listener.host}:{p.port}", "Index": p.pool.index,
             "Upstreams": [u.target for u in p.pool.upstreams], "Open": p.pool.open_connections()}
            for sel, p in self.upstreams.values()
        ]  # fmt: skip
        return {
            "Service": self.config.destination if self.config else "",
            "Inbound": self.inbound.port if self.inbound else 0,
            "Refused": self.refused,
            "Authorizations": self.authorizer.asked if self.authorizer else 0,
            "Certificates": self.certificates.changes if self.certificates else 0,
            "Listeners": listeners,
        }

    async def close(self) -> None:
        if self._follow is not None:
            self._follow.cancel()
            await asyncio.gather(self._follow, return_exceptions=True)
        planes = [p for _, p in self.upstreams.values()] + ([self.inbound] if self.inbound else [])
        for plane in planes:
            await plane.close()
        self.upstreams.clear()
        self.inbound = None
        await self.watcher.close()
        if self.authorizer is not None:
            await self.authorizer.close()
        if self.certificates is not None:
            await self.certificates.close()
