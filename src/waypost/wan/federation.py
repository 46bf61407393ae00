"""WAN federation for one agent: the server-to-server exchange that keeps the WAN pool,
the probe loop, WAN joins, and where a request for another datacenter goes.

Each datacenter keeps its own store; nothing of its catalog crosses the WAN except the
answers to forwarded requests. Servers know each other by swapping, on every probe, the
servers they know (``Exchange``) over the public HTTP API (HTTPS with TLS, the
replication token with ACLs). A server adds its own datacenter's servers from the LAN
membership, so one ``join -wan`` brings in every server of both datacenters, as Consul's
flood-join does. A client agent keeps no WAN pool: it hands ``?dc=`` requests to a server
of its own datacenter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import msgspec

from waypost.agent.tasks import cancel_all
from waypost.api.common import NO_DC_PATH
from waypost.api.gate import request_secret
from waypost.api.http import Request, Response
from waypost.api.status import DIMENSIONS
from waypost.dns.recursor import Recursor
from waypost.query.remote import EXECUTE_REMOTE_PATH
from waypost.store.remote import NO_SERVERS
from waypost.tlsutil import outgoing_context
from waypost.wan.acl_replication import PRIMARY_WRITES, AclReplicator, primary_handler
from waypost.wan.forward import CLIENT_HOP, FORWARDED_HEADER, SERVER_HOP, Forwarder
from waypost.wan.members import ALIVE, FAILED, LEFT, Exchange, WanEntry, WanMembers
from waypost.wan.verify import certificate_datacenter, server_name

if TYPE_CHECKING:
    from waypost.agent.agent import Agent

__all__ = ["EXCHANGE_PATH", "Federation", "wan_url"]

log = logging.getLogger("waypost.wan")

EXCHANGE_PATH = "/v1/internal/wan/exchange"
DEFAULT_HTTP_PORT = 8500

_HEIGHT = 1e-05
"""Serf's minimum coordinate height."""

_ENCODE = msgspec.json.Encoder()
_DECODE = msgspec.json.Decoder(Exchange)


def wan_url(address: str, scheme: str = "http") -> str:
    """The base URL of a server's HTTP API from a join address, ``host[:port]`` (port 8500
    by default) or a full ``http(s)://host:port``; raises ValueError naming what is wrong."""
    text = address.strip()
    if "://" not in text:
        text = f"{scheme}://{text}"
    parts = urlsplit(text)
    try:
        port = parts.port or DEFAULT_HTTP_PORT
    except ValueError:
        raise ValueError(f"invalid address {address!r}: the port is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"invalid address {address!r}: expected host[:port]")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


class Federation:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        cfg = agent.config
        self.table = WanMembers(
            cfg.datacenter,
            clock=agent.clock,
            suspicion=cfg.gossip_wan.suspicion_mult,
            reconnect_timeout=cfg.reconnect_timeout_wan.seconds,
        )
        self._forwarder: Forwarder | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._relay_dns = ""
        """A client agent's: the DNS address of the server whose WAN view it copies."""
        primary = cfg.primary_datacenter
        self.replicator = (
            AclReplicator(agent, self) if cfg.acl.enabled and primary and primary != cfg.datacenter else None
        )
        """ACL replication from the primary; None in the primary or with ACLs off."""

    @property
    def forwarder(self) -> Forwarder:
        if self._forwarder is None:
            tls = self.agent.tls
            self._forwarder = Forwarder(tls.servers.context if tls and tls.servers else None)
        return self._forwarder

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.agent.config
        if not cfg.server:
            self._tasks.append(asyncio.create_task(self._mirror_loop(), name="wan-mirror"))
            return
        self._tasks.append(asyncio.create_task(self._probe_loop(), name="wan-probe"))
        if self.replicator is not None:
            self._tasks.append(asyncio.create_task(self.replicator.run(), name="acl-replication"))
        if cfg.start_join_wan or cfg.retry_join_wan:
            self._tasks.append(asyncio.create_task(self._join_configured(), name="wan-join"))

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks.clear()
        if self._forwarder is not None:
            await self._forwarder.close()

    # -- verify_server_hostname --------------------------------------------------------------

    @property
    def verifying(self) -> bool:
        """Whether peers must present ``server.<their dc>.<domain>`` (see ``wan.verify``)."""
        tls = self.agent.tls
        return tls is not None and tls.servers is not None and tls.servers.server_name is not None

    def _name(self, dc: str) -> str | None:
        """The certificate name asked of a server of ``dc``; None when names are not verified."""
        return server_name(dc, self.agent.config.domain) if self.verifying else None

    def _bases(self, dc: str) -> list[str]:
        """Where requests for ``dc`` go, nearest first: over HTTPS only when names are
        verified, so a plain ``http://`` URL heard of cannot skip the check."""
        urls = [s.url for s in self.table.route(dc)]
        return [u for u in urls if u.startswith("https://")] if self.verifying else urls

    def _https_first(self, http_port: bool) -> bool:
        """Servers are reached over HTTPS when they serve no HTTP, or when names are verified
        (there is nothing to verify over plain HTTP)."""
        return not http_port or self.verifying

    # -- the exchange ----------------------------------------------------------------------

    def self_entry(self) -> WanEntry:
        agent = self.agent
        host = agent.config.advertise_addr_wan or agent.node.Address
        host = f"[{host}]" if ":" in host else host
        scheme, port = ("http", agent.http_port)
        if agent.https_port and self._https_first(bool(agent.http_port)):
            scheme, port = ("https", agent.https_port)
        dns = f"{host}:{agent.dns_port}" if agent.dns_port else ""
        return WanEntry(agent.node.Node, agent.datacenter, f"{scheme}://{host}:{port}", dns)

    def _lan_servers(self) -> list[WanEntry]:
        """The other servers of this datacenter, as the LAN membership knows them."""
        agent = self.agent
        if not agent.online or agent.state is None:
            return []
        idx = agent.state.indexes
        out = []
        for member in idx.members.values():
            if not member.Server or member.Name == agent.node.Node:
                continue
            host, _, port = member.HTTPAddr.rpartition(":")
            scheme = "http"
            if member.HTTPSAddr and self._https_first(port not in ("", "0")):
                scheme, (host, _, port) = "https", member.HTTPSAddr.rpartition(":")
            if port in ("", "0"):
                continue
            host = f"[{host}]" if ":" in host and not host.startswith("[") else host
            status = LEFT if member.Left else ALIVE if member.Name in idx.live else FAILED
            out.append(WanEntry(member.Name, agent.datacenter, f"{scheme}://{host}:{port}", "", status))
        return out

    def payload(self) -> Exchange:
        known = [s.entry() for s in self.table.servers()]
        return Exchange(self.self_entry(), self._lan_servers() + known)

    def receive(self, peer: Exchange) -> Exchange:
        """A server of another datacenter probed us: it is alive, and we learn whom it knows.
        When names are verified, only our own probes (which check its certificate) say it
        is alive: a caller's word is hearsay."""
        if self.verifying:
            self.table.learn([peer.Self])
        else:
            self.table.answered(peer.Self, None)
        self.table.learn(peer.Servers)
        return self.payload()

    def token(self) -> str:
        """What this server presents to other datacenters: its replication token, else its agent token."""
        tokens = self.agent.acl_tokens
        return tokens.get("replication") or tokens.get("agent")

    async def _swap(self, url: str, dc: str, *, share: bool = True) -> tuple[Exchange, float]:
        """One exchange with the server of ``dc`` at ``url``: what it answered and the round
        trip. Without ``share``, only its view is read (a client agent's mirror)."""
        if self.verifying and not url.startswith("https://"):
            raise ValueError(f"{url} is not HTTPS: verify_server_hostname needs TLS")
        body = _ENCODE.encode(self.payload()) if share else None
        headers = [("X-Consul-Token", self.token())] if self.token() else []
        started = time.perf_counter()
        resp = await self.forwarder.http.request(
            "PUT" if share else "GET",
            url + EXCHANGE_PATH,
            body=body,
            headers=headers,
            total=self.agent.config.gossip_wan.probe_timeout.seconds,
            server_hostname=self._name(dc),
        )
        raw = await resp.read()
        rtt = time.perf_counter() - started
        if resp.status != 200:
            raise ValueError(f"{resp.status} {raw[:200].decode(errors='replace')}")
        return _DECODE.decode(raw), rtt

    async def _probe(self, key: str, url: str, dc: str) -> None:
        """A server that does not answer, or answers under another name (another server
        now at its address), counts as a missed probe; so does one whose certificate does
        not name a server of ``dc`` when names are verified."""
        try:
            peer, rtt = await self._swap(url, dc)
            if f"{peer.Self.Name}.{peer.Self.Datacenter}" != key:
                if peer.Self.Datacenter == dc or not self.verifying:
                    self.table.answered(peer.Self, rtt)
                raise ValueError(f"{url} now answers as {peer.Self.Name}.{peer.Self.Datacenter}")
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            log.debug("(WAN) probe of %s failed: %s", key, exc)
            before = self.table.get(key)
            was_alive = before is not None and before.status == ALIVE
            self.table.missed(key)
            after = self.table.get(key)
            if was_alive and after is not None and after.status == FAILED:
                log.warning("(WAN) member failed: %s", key)
            return
        before = self.table.get(key)
        revived = before is not None and before.status == FAILED
        self.table.answered(peer.Self, rtt)
        self.table.learn(peer.Servers)
        if revived:
            log.info("(WAN) member is alive again: %s", key)

    async def probe_all(self) -> None:
        """One round: every known server of another datacenter, all at once, each bounded
        by ``gossip_wan.probe_timeout``."""
        targets = [(s.key, s.url, s.datacenter) for s in self.table.servers() if s.status != LEFT]
        if targets:
            await asyncio.gather(*(self._probe(key, url, dc) for key, url, dc in targets))
        for key in self.table.reap():
            log.info("(WAN) forgot member failed past reconnect_timeout_wan: %s", key)

    async def _probe_loop(self) -> None:
        interval = self.agent.config.gossip_wan.probe_interval.seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.probe_all()
            except Exception:
                log.exception("(WAN) probe round failed")

    async def mirror_once(self) -> None:
        """A client agent copies the WAN view of a server of its datacenter: names in other
        datacenters are then relayed to that server's DNS, and prepared queries fail over
        in the order it measured. Its ``?dc=`` requests still go through a server."""
        for url in self._local_servers():
            try:
                view, _ = await self._swap(url, self.agent.datacenter, share=False)
            except (OSError, ValueError, msgspec.DecodeError) as exc:
                log.debug("(WAN) reading the WAN view of %s failed: %s", url, exc)
                continue
            self.table.mirror(view.Servers)
            self._relay_dns = view.Self.DNS
            return

    async def _mirror_loop(self) -> None:
        interval = self.agent.config.gossip_wan.probe_interval.seconds
        while True:
            await self.mirror_once()
            await asyncio.sleep(interval)

    # -- joins -----------------------------------------------------------------------------

    def _scheme(self) -> str:
        return "http" if self.agent.http_port else "https"

    async def join(self, address: str) -> None:
        """``join -wan``: raises ValueError for a malformed address, OSError when the server
        there does not answer the exchange."""
        url = wan_url(address, self._scheme())
        try:
            dc = await self._certified_datacenter(url) if self.verifying else ""
            peer, rtt = await self._swap(url, dc)
            if self.verifying and peer.Self.Datacenter != dc:
                raise ValueError(
                    f"it answers as a server of {peer.Self.Datacenter}, its certificate names {dc}"
                )
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            raise OSError(f"Failed to join {address}: {exc or type(exc).__name__}") from None
        self.table.answered(peer.Self, rtt)
        self.table.learn(peer.Servers)

    async def _certified_datacenter(self, url: str) -> str:
        """The datacenter the certificate of the server at ``url`` is for, read before a
        join sends it anything."""
        cfg = self.agent.config
        context = outgoing_context(cfg.tls.internal_rpc, "tls.internal_rpc", check_hostname=False)
        async with asyncio.timeout(cfg.gossip_wan.probe_timeout.seconds):
            return await certificate_datacenter(url, context, cfg.domain)

    async def _join_all(self, addresses: tuple[str, ...]) -> int:
        log.info("(WAN) joining: wan_addresses=%s", list(addresses))
        joined, errors = 0, []
        for address in addresses:
            try:
                await self.join(address)
                joined += 1
            except (OSError, ValueError) as exc:
                errors.append(str(exc))
        if joined:
            log.info("(WAN) joined: number_of_nodes=%d", joined)
        else:
            log.warning("(WAN) couldn't join: number_of_nodes=0 error=%s", "; ".join(errors))
        return joined

    async def _join_configured(self) -> None:
        """``start_join_wan`` once, then ``retry_join_wan`` until one answers; only
        ``retry_max_wan`` failed attempts stop the agent, as Consul's does."""
        cfg = self.agent.config
        if cfg.start_join_wan:
            await self._join_all(cfg.start_join_wan)
        attempt = 0
        while cfg.retry_join_wan and not await self._join_all(cfg.retry_join_wan):
            attempt += 1
            if 0 < cfg.retry_max_wan <= attempt:
                log.error("Retry join WAN failed: error=agent: max join -wan retry exhausted, exiting")
                self.agent.exit_code = 1
                self.agent.request_leave()
                return
            log.warning(
                "Join cluster failed, will retry: cluster=WAN retry_interval=%s", cfg.retry_interval_wan
            )
            await asyncio.sleep(cfg.retry_interval_wan.seconds)

    # -- routing ---------------------------------------------------------------------------

    def datacenters(self) -> list[str]:
        """This datacenter, then the others nearest first (Consul's catalog/datacenters)."""
        return [self.agent.datacenter, *self.table.datacenters_by_distance()]

    def _local_servers(self) -> list[str]:
        """Base URLs of this datacenter's live servers, for a client agent's forwards."""
        agent = self.agent
        if not agent.online or agent.state is None:
            return []
        https = self.verifying
        return [
            e.URL
            for e in self._lan_servers()
            if e.Status == ALIVE and (e.URL.startswith("https://") or not https)
        ]

    def forward(self, dc: str, req: Request) -> Response | asyncio.Future[Response]:
        """Where ``?dc=<dc>`` goes: on a server, to a server of ``dc``; on a client agent,
        to a server of its own datacenter, which forwards it on. A request a server already
        forwarded is never forwarded again: the table that sent it here was wrong."""
        server = self.agent.config.server
        hop = req.headers.get(FORWARDED_HEADER.lower())
        if hop == SERVER_HOP or (hop and not server):
            return Response.text(NO_DC_PATH, 500)
        if server:
            bases = self._bases(dc)
            if not bases:
                return Response.text(NO_DC_PATH, 500)
        elif not self.agent.online:
            return Response.text(NO_SERVERS, 500)
        else:
            bases, dc = self._local_servers(), self.agent.datacenter
        hop = SERVER_HOP if server else CLIENT_HOP
        return asyncio.ensure_future(self.forwarder.relay(bases, req, hop, self._name(dc)))

    async def relay_to(self, dc: str, req: Request) -> Response:
        """``req`` answered by datacenter ``dc``: from a server, by one of its servers; from a
        client agent, through a server of this datacenter."""
        if self.agent.config.server:
            bases = self._bases(dc)
            return await self.forwarder.relay(bases, req, SERVER_HOP, self._name(dc))
        if not self.agent.online:
            return Response.text(NO_SERVERS, 500)
        local = self._name(self.agent.datacenter)
        return await self.forwarder.relay(self._local_servers(), req, CLIENT_HOP, local)

    def routes(
        self, routes: list[tuple[tuple[str, ...], str, Any]]
    ) -> list[tuple[tuple[str, ...], str, Any]]:
        """The route table as this agent serves it: in a secondary datacenter with ACLs,
        ACL writes go to the primary (see ``acl_replication``)."""
        cfg = self.agent.config
        if not cfg.acl.enabled or cfg.primary_datacenter in ("", cfg.datacenter):
            return routes
        return [
            (methods, path, primary_handler(handler, local_tokens=PRIMARY_WRITES[path]))
            if path in PRIMARY_WRITES else (methods, path, handler)
            for methods, path, handler in routes
        ]  # fmt: skip

    def ask_server(self, req: Request) -> Response | asyncio.Future[Response]:
        """A client agent's answer to what only servers know (the WAN pool, and on a lean
        client all of the registry): a server's, failing over across the live ones. A
        request without a token carries the agent's default token, as Consul's client
        agents fill it in before their RPC, so the server resolves what this agent would."""
        if req.headers.get(FORWARDED_HEADER.lower()):
            return Response.text(NO_DC_PATH, 500)
        bases = self._local_servers()
        if not bases:
            return Response.text(NO_SERVERS, 500)
        default = self.agent.acl_tokens.get("default")
        if default and not request_secret(req):
            req.headers["x-consul-token"] = default
        local = self._name(self.agent.datacenter)
        return asyncio.ensure_future(self.forwarder.relay(bases, req, CLIENT_HOP, local, NO_SERVERS))

    def remote_coordinates(self) -> list[dict[str, Any]]:
        """The other datacenters' servers as ``coordinate/datacenters`` areas. Each server
        measures round trips rather than running Vivaldi, so it places itself at the
        origin and each remote server at its measured distance along the first axis: from
        here, ``rtt -wan`` reads the round trip this server measured."""
        areas: dict[str, list[dict[str, Any]]] = {}
        for server in self.table.servers():
            rtt = server.rtt if server.rtt is not None else 0.0
            vec = [max(rtt - 2 * _HEIGHT, 0.0)] + [0.0] * (DIMENSIONS - 1)
            coord = {"Vec": vec, "Error": 1.5, "Adjustment": 0.0, "Height": _HEIGHT}
            areas.setdefault(server.datacenter, []).append(
                {"Node": server.name, "Segment": "", "Coord": coord}
            )
        return [
            {"Datacenter": dc, "AreaID": "wan", "Coordinates": rows} for dc, rows in sorted(areas.items())
        ]

    # -- DNS's RemoteDns --------------------------------------------------------------------

    def known(self, datacenter: str) -> bool:
        return any(s.datacenter == datacenter for s in self.table.servers())

    async def resolve(self, datacenter: str, query: bytes, tcp: bool) -> bytes | None:
        """Relayed to the DNS interface of ``datacenter``'s alive servers, nearest first; from
        a client agent, to the server whose view it copied, which relays it on."""
        upstreams = []
        via = (
            [self._relay_dns]
            if not self.agent.config.server
            else [s.dns for s in self.table.route(datacenter)]
        )
        for address in via:
            host, _, port = address.rpartition(":")
            if host and port.isdigit():
                upstreams.append((host.strip("[]"), int(port)))
        timeout = self.agent.config.dns_config.recursor_timeout.seconds
        return await Recursor(upstreams, timeout=timeout).resolve(query, tcp)

    # -- prepared queries' RemoteDatacenters ----------------------------------------------

    def local_datacenter(self) -> str:
        return self.agent.datacenter

    def datacenters_by_distance(self) -> list[str]:
        return self.table.datacenters_by_distance()

    async def execute_remote(
        self, dc: str, query: Mapping[str, Any], params: Mapping[str, str], token: str | None
    ) -> bytes | None:
        bases = self._bases(dc)
        if not bases:
            return None
        headers = {"content-type": "application/json"}
        if token:
            headers["x-consul-token"] = token
        req = Request("POST", EXECUTE_REMOTE_PATH, urlencode(dict(params)), headers, _ENCODE.encode(query))
        with contextlib.suppress(OSError):
            resp = await self.forwarder.relay(bases, req, SERVER_HOP, self._name(dc))
            if 200 <= resp.status < 300:
                return resp.body
        return None
