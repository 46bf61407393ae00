"""The agent: wiring and lifecycle. It owns no logic of its own beyond deciding which
pieces run (store, state, leader duties, checks, anti-entropy, HTTP, DNS) and in what
order they start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from waypost.agent.acl_tokens import AgentTokens
from waypost.agent.checks import AgentChecks
from waypost.agent.cluster import Cluster
from waypost.agent.dns_backend import start_dns
from waypost.agent.leader import SERF_CHECK
from waypost.agent.lean import replica_scope
from waypost.agent.lean_cache import RefreshedReads
from waypost.agent.local import LocalState, sync_in_process
from waypost.agent.monitor import LogBroadcaster
from waypost.agent.pacing import ae_wait
from waypost.agent.relays import AgentRelays
from waypost.agent.tasks import cancel_all
from waypost.agent.tls import AgentTLS
from waypost.agent.views import Views
from waypost.api.http import GO_MAX_HEADER_BYTES, HttpLimits, HttpServer
from waypost.api.replica_feed import ReplicaFeed
from waypost.config import AgentConfig, ConfigError, reload_config
from waypost.connect import ca_store
from waypost.connect.ca_config import CAConfigError
from waypost.connect.leaf import LeafCerts
from waypost.state.kv_ops import LockDelays
from waypost.state.model import Node
from waypost.state.state import State
from waypost.store import open_store
from waypost.store.base import Store, StoreError
from waypost.store.remote import RemoteStore, probe, server_address
from waypost.tlsutil import TLSSetupError
from waypost.wan.federation import Federation

__all__ = ["Agent"]

log = logging.getLogger("waypost.agent")


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.started_at = time.time()
        self.store: Store | None = None
        self.state: State | None = None
        self.lock_delays = LockDelays(clock)
        address = config.advertise_addr or config.bind_addr or "127.0.0.1"
        self.node = Node(
            ID=config.node_id,
            Node=config.node_name,
            Address=address,
            Datacenter=config.datacenter,
            TaggedAddresses={"lan": address, "lan_ipv4": address, "wan": address, "wan_ipv4": address},
            Meta={"consul-network-segment": "", **config.node_meta},
        )
        self.local = LocalState(self.node)
        self.acl_tokens = AgentTokens(config.acl, config.data_dir)
        self.cluster: Cluster | None = None
        self.connect_leaves: LeafCerts | None = None
        """The services' leaf certificates; None while Connect is disabled."""
        self.wan = Federation(self)
        """The WAN pool (servers) and where ``?dc=`` requests for other datacenters go."""
        acl = config.acl
        self.views = Views(
            self.wan.ask_server, acl.default_policy if acl.enabled else "allow", acl_enabled=acl.enabled
        )
        """A client agent's health views, each kept by a server's delta stream (``agent.views``)."""
        self.refreshed_reads = RefreshedReads(
            self.wan.ask_server, views=self.views, datacenter=config.datacenter
        )
        """A client agent's background-refresh cache entries (``agent.lean_cache``)."""
        self.replica_feed: ReplicaFeed | None = None
        """A server's client replica streams (``api.replica_feed``), once its server port is up."""
        self.checks = AgentChecks(self)
        self.http_port = 0
        self.https_port = 0
        self._http: HttpServer | None = None
        self.tls: AgentTLS | None = None
        self.dns_port = 0
        self.server_port = 0
        self.online = False
        """True once the catalog is loaded: at start on a server, on the first join on a client."""
        self._going_online = asyncio.Lock()
        self._loaded = False
        self.exit_code = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._servers: list[Any] = []
        self.logs = LogBroadcaster()
        logging.getLogger().addHandler(self.logs)
        self.stopped = asyncio.Event()
        self._leaving: asyncio.Task[None] | None = None
        self.events_ltime = 0

    @property
    def datacenter(self) -> str:
        return self.config.datacenter

    @property
    def http_addr(self) -> str:
        cfg = self.config
        return (cfg.addresses.http or cfg.client_addr).split()[0]

    @property
    def dns_addr(self) -> str:
        cfg = self.config
        return (cfg.addresses.dns or cfg.client_addr).split()[0]

    def acl_data_current(self) -> bool:
        """Whether this agent's copy of the ACL tables is current, or ``acl.down_policy``
        applies: a server's store is its own, as Consul's servers resolve locally; a client
        agent's copy is current while its heartbeat reaches a server (not before it joins)."""
        if self.config.server:
            return True
        return self.online and self.cluster is not None and self.cluster.reaching_store

    def require_state(self) -> State:
        assert self.state is not None, "agent not started"
        return self.state

    async def start(self) -> None:
        from waypost.api.app import ApiApp
        from waypost.api.routes import SPOOLED_BODIES, STORE_ROUTES
        from waypost.state.acl_ops import ensure_builtins

        self.tls = AgentTLS(self.config)
        self.store = self._open_store()
        self.state = State(self.store)
        self.cluster = Cluster(self, self.state)
        if self.config.connect.enabled:
            self.connect_leaves = LeafCerts(self.state, self.datacenter, self._sign_leaf)
        if self.config.server:
            await self._load_catalog()
        self.checks.load_config()
        self.checks.restore()
        await self.checks.start()
        state = self.state
        state.listeners.append(self._on_catalog_change)
        app = ApiApp(self)
        relays = AgentRelays(self) if self.config.server else None
        http = self._http = HttpServer(
            app.handle, _http_limits(self.config), SPOOLED_BODIES, app.admit, relays
        )
        self._servers.append(http)
        if self.config.ports.http > 0:
            self.http_port = await http.listen(self.http_addr, self.config.ports.http)
        if self.tls.https is not None:
            handshake = self.config.limits.https_handshake_timeout.seconds
            address = (self.config.addresses.https or self.config.client_addr).split()[0]
            self.https_port = await http.listen(
                address, self.config.ports.https, tls=self.tls.https, handshake_timeout=handshake
            )
        if self.config.server and self.config.ports.server > 0:
            store_app = ApiApp(self, STORE_ROUTES)
            self.replica_feed = store_app.event_ring.feed
            store_api = HttpServer(store_app.handle)
            self.server_port = await store_api.listen(
                self.config.bind_addr, self.config.ports.server, tls=self.tls.internal
            )
            self._servers.append(store_api)
        if self.config.ports.dns > 0:
            dns = await start_dns(
                state, self.config, self.dns_addr, self.acl_tokens, self.acl_data_current, self.wan, self.wan,
                ask_server=None if self.config.server else self.wan.ask_server, views=self.views,
            )  # fmt: skip
            self.dns_port = dns.port
            self._servers.append(_Stoppable(dns.stop))
        if self.config.server:
            await self._go_online()
            if self.config.acl.enabled:
                await ensure_builtins(state, self.config.acl.tokens.initial_management)
            if self.config.connect.enabled:
                await ca_store.ensure_ca(state, self.config.connect.ca_config)
        if self.config.start_join or self.config.retry_join:
            self._tasks.append(asyncio.create_task(self._join_configured(), name="join"))
        self.wan.start()
        # What start-up loaded lives as long as the agent: move it out of the collector's
        # generations so full collections stop re-scanning the whole catalog.
        gc.freeze()
        log.info(
            "agent started: node=%s http=%s https=%s dns=%s server=%s", self.node.Node,
            self.http_port or "-", self.https_port or "-", self.dns_port, self.server_port or "-",
        )  # fmt: skip

    def _open_store(self) -> Store:
        """A server's own store, or for a client agent a remote one that starts with no server:
        joins add them. Join addresses are checked here so a typo stops start-up."""
        cfg = self.config
        if cfg.store:
            return open_store(cfg.store, cfg.tls.store)
        for address in (*cfg.start_join, *cfg.retry_join):
            server_address(address)
        return RemoteStore(
            tls=self.tls.servers if self.tls else None,
            token=self.acl_tokens.get("agent"),
            scope=replica_scope(self.node.Node),
        )

    async def _load_catalog(self) -> None:
        """Once only: a join that failed after loading is retried without a second feed."""
        if not self._loaded:
            await self.require_state().start()
            self._loaded = True

    async def _go_online(self) -> None:
        """Load the catalog and take part in the cluster: at start on a server, at the first
        join on a client agent, whose local services and checks waited locally until now."""
        async with self._going_online:
            if self.online:
                return
            state = self.require_state()
            await self._load_catalog()
            assert self.cluster is not None
            await self.cluster.start()
            target = functools.partial(sync_in_process, state)
            ae = self.local.run(state, target, self._ae_wait)
            self._tasks.append(asyncio.create_task(ae, name="anti-entropy"))
            self.online = True
        await self.local.wait_synced()
        await self._wait_healthy(10.0)

    def _ae_wait(self) -> float:
        """Seconds to the next full sync: ``ae_interval`` staggered and stretched as the
        cluster grows (``pacing.ae_wait``)."""
        size = self.cluster.size() if self.cluster is not None else 1
        return ae_wait(self.config.ae_interval.seconds, size, self.rng.random())

    async def join(self, address: str) -> None:
        """``agent/join``: ``address`` is a server's agent-to-server listener. A client agent
        adds it to the servers its store fails over across (the first one brings the agent
        online); servers already share the store, so for them the address is only checked.
        Raises ValueError for a malformed address, StoreError when it does not answer."""
        target = server_address(address)
        await probe(target, self.tls.servers if self.tls else None, self.acl_tokens.get("agent"))
        if isinstance(self.store, RemoteStore):
            self.store.add_server(target)
            await self._go_online()

    async def _join_all(self, addresses: tuple[str, ...]) -> int:
        """Consul's JoinLAN over several addresses: how many answered."""
        log.info("(LAN) joining: lan_addresses=%s", list(addresses))
        joined, errors = 0, []
        for address in addresses:
            try:
                await self.join(address)
                joined += 1
            except (StoreError, OSError, ValueError) as exc:
                errors.append(str(exc))
        if joined:
            log.info("(LAN) joined: number_of_nodes=%d", joined)
        else:
            log.warning("(LAN) couldn't join: number_of_nodes=0 error=%s", "; ".join(errors))
        return joined

    async def _join_configured(self) -> None:
        """``start_join`` once, then ``retry_join`` every ``retry_interval`` until a server
        answers. Without servers the agent keeps running; only ``retry_max`` failed attempts
        stop it, with exit code 1, as Consul's agent exits then."""
        cfg = self.config
        if cfg.start_join:
            await self._join_all(cfg.start_join)
        if not cfg.retry_join:
            return
        attempt = 0
        while not await self._join_all(cfg.retry_join):
            attempt += 1
            if 0 < cfg.retry_max <= attempt:
                log.error("Retry join failed: error=agent: max join retry exhausted, exiting")
                self.exit_code = 1
                self._leaving = asyncio.get_running_loop().create_task(self.stop())
                return
            log.warning("Join cluster failed, will retry: cluster=LAN retry_interval=%s", cfg.retry_interval)
            await asyncio.sleep(cfg.retry_interval.seconds)

    async def _wait_healthy(self, limit: float) -> None:
        """Start-up is over once the leader has marked this node alive (serfHealth passing),
        so that clients can create sessions, which depend on that check, straight away."""
        state = self.require_state()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            check = state.indexes.checks.get(self.node.Node, {}).get(SERF_CHECK)
            if check is not None and check.Status == "passing":
                return
            await asyncio.sleep(0.02)
        log.warning("no leader has marked this node alive yet; continuing")

    def _on_catalog_change(self, batch: list[Any], revision: int) -> None:
        """Repair the catalog when our node's entries are changed behind our back."""
        name = self.node.Node
        prefixes = (f"catalog/nodes/{name}", f"catalog/services/{name}/", f"catalog/checks/{name}/")
        if any(ev.kv.key.startswith(prefixes) for ev in batch):
            self.local.changed()

    async def reload(self) -> None:
        log.info("Reloading configuration...")
        config = reload_config(self.config)
        if self.tls is not None:
            try:
                self.tls.reload(config)
            except TLSSetupError as exc:
                raise ConfigError(str(exc)) from None
        self.config = config
        self.checks.load_config()
        if self._http is not None:
            self._http.limits = _http_limits(self.config)

    async def _quiesce(self) -> None:
        """Stop everything that writes on this agent's behalf (checks, anti-entropy)."""
        await self.checks.stop()
        await cancel_all(self._tasks)

    async def stop(self) -> None:
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):
                await server.close()
        self._servers.clear()
        await self._quiesce()
        await self.refreshed_reads.close()
        await self.views.close()
        await self.wan.stop()
        if self.connect_leaves is not None:
            await self.connect_leaves.close()
        if self.cluster is not None:
            await self.cluster.stop()
        if self.state is not None:
            await self.state.close()
        if self.store is not None:
            await self.store.close()
        logging.getLogger().removeHandler(self.logs)
        self.stopped.set()

    async def _sign_leaf(self, csr: str, service: str) -> dict[str, Any]:
        """The CA's signature: a server's own, from the record every server shares; a
        client agent asks a server, over the agent-to-server API."""
        if isinstance(self.store, RemoteStore):
            answer = await self.store.server_action(
                "/connect-sign", orjson.dumps({"CSR": csr, "Service": service})
            )
            issued: dict[str, Any] = orjson.loads(answer)
            return issued
        record = self.require_state().indexes.connect_ca.get("state")
        if record is None:
            raise CAConfigError("the CA is not initialised yet")
        return ca_store.issue(record, csr, service)

    async def leave(self) -> None:
        """Graceful leave: deregister this node and mark it left, then stop. Anti-entropy
        stops first, or it would put the node straight back."""
        await self._quiesce()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                await self.cluster.leave()
        await self.stop()

    def request_leave(self) -> None:
        """``agent/leave``: answer the request first, then leave."""
        loop = asyncio.get_running_loop()

        def begin() -> None:
            self._leaving = loop.create_task(self.leave())

        loop.call_later(0.05, begin)


def _http_limits(cfg: AgentConfig) -> HttpLimits:
    """The HTTP server's limits from the agent's configuration. The body cap never cuts
    below the KV and transaction limits, so those endpoints answer with their own error."""
    http = cfg.http_config
    return HttpLimits(
        max_header_bytes=http.max_header_bytes or GO_MAX_HEADER_BYTES,
        max_body_bytes=max(http.max_body_bytes, cfg.limits.kv_max_value_size, cfg.limits.txn_max_req_len),
        read_header_timeout=http.read_header_timeout.seconds,
        idle_timeout=http.idle_timeout.seconds,
        max_conns_per_client=cfg.limits.http_max_conns_per_client,
    )


class _Stoppable:
    """Lets servers with different stop verbs sit in one shutdown list."""

    def __init__(self, stop: Callable[[], Awaitable[None]]) -> None:
        self.close = stop
