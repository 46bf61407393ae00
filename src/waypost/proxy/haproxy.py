"""``waypost proxy -haproxy``: a real HAProxy kept in step with the catalog without reloads.

The file (``haproxy_config.render``) is written for the listener set; after that every
answer of the shared ``UpstreamWatcher`` becomes runtime API commands (``plan``): an
instance that appears takes a free ``server-template`` slot (``set server ... addr``, then
``state ready``), one that leaves goes to ``state maint`` (its open connections finish,
new ones go elsewhere), a weight change is ``set weight``. More instances than slots
become dynamic servers (``add server``), deleted once they have been idle in maintenance
for a round. HAProxy reloads (through the master CLI, keeping its listening sockets) only
when the file's listener set differs from the one HAProxy runs.

``plan`` reads HAProxy's own ``show servers state`` rather than remembering what it did,
so a reload (which starts every slot afresh) or an operator's command is simply
converged again at the next update.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from waypost.client import ApiClient, ApiError, Backoff
from waypost.proxy.config import ProxyConfig
from waypost.proxy.haproxy_config import HaproxySettings, backend_name, render
from waypost.proxy.haproxy_routes import Route, routes_of
from waypost.proxy.haproxy_runtime import HaproxyError, MasterClient, RuntimeClient, ServerState
from waypost.proxy.runner import StartError
from waypost.proxy.upstreams import Selector, Upstream, UpstreamUpdate, UpstreamWatcher
from waypost.template.output import write_if_changed

__all__ = ["MAX_WEIGHT", "HaproxyController", "HaproxyOptions", "addressable", "plan"]

log = logging.getLogger("waypost.proxy")

MAX_WEIGHT = 256
"""HAProxy's largest server weight; Consul allows more, so larger weights are capped."""
DYNAMIC_PREFIX = "d"
START_TIMEOUT = 10.0
RETRY_DELAY = 0.5


@dataclass(frozen=True, slots=True)
class HaproxyOptions:
    config_path: str
    admin_socket: str
    binary: str = ""
    """When set, waypost starts HAProxy itself (master-worker) and stops it on exit."""
    slots: int = 16
    http_bind: str = ""
    """ip:port of an HTTP frontend routing by the catalog's ``urlprefix-`` tags."""

    @property
    def master_socket(self) -> str:
        """The master CLI's socket: the admin socket's path with ``.master`` appended."""
        return self.admin_socket + ".master"


def addressable(upstreams: Sequence[Upstream]) -> tuple[tuple[Upstream, ...], list[Upstream]]:
    """The instances HAProxy can be pointed at (an IP address), and the others (a host name,
    or no address at all), which ``set server ... addr`` would refuse."""
    usable, named = [], []
    for up in upstreams:
        try:
            ipaddress.ip_address(up.address)
        except ValueError:
            named.append(up)
            continue
        usable.append(up)
    return tuple(usable), named


def _wanted(upstreams: Sequence[Upstream]) -> dict[str, int]:
    """target -> HAProxy weight; two registrations of one address:port share one server."""
    out: dict[str, int] = {}
    for up in upstreams:
        out[up.target] = max(out.get(up.target, 0), min(max(up.weight, 1), MAX_WEIGHT))
    return out


def _dynamic_number(name: str) -> int:
    tail = name[len(DYNAMIC_PREFIX) :]
    return int(tail) if name.startswith(DYNAMIC_PREFIX) and tail.isdigit() else 0


def _set_addr(backend: str, server: ServerState, target: str) -> str:
    host, _, port = target.rpartition(":")
    return f"set server {backend}/{server.name} addr {host.strip('[]')} port {port}"


def plan(backend: str, servers: Sequence[ServerState], upstreams: Sequence[Upstream]) -> list[str]:
    """The runtime commands that make ``servers`` (``show servers state``) serve ``upstreams``.

    New instances are placed before departed ones leave, so the backend never has fewer
    servers in service than both the old and the new set share.
    """
    wanted = _wanted(upstreams)
    placed: dict[str, ServerState] = {}
    spare: list[ServerState] = []
    for server in servers:
        if server.target in wanted and server.target not in placed:
            placed[server.target] = server
        else:
            spare.append(server)
    spare.sort(key=lambda s: (not s.maint, s.name))  # idle slots first, then departing ones
    commands: list[str] = []
    next_dynamic = max((_dynamic_number(s.name) for s in servers), default=0) + 1
    for target, weight in wanted.items():
        current = placed.get(target)
        if current is not None:
            if current.weight != weight:
                commands.append(f"set weight {backend}/{current.name} {weight}")
            if not current.ready:
                commands.append(f"set server {backend}/{current.name} state ready")
            continue
        if spare:
            server = spare.pop(0)
            if not server.maint:
                commands.append(f"set server {backend}/{server.name} state maint")
            commands.append(_set_addr(backend, server, target))
            name = server.name
        else:
            name = f"{DYNAMIC_PREFIX}{next_dynamic}"
            next_dynamic += 1
            commands.append(f"add server {backend}/{name} {target} weight {weight}")
        commands.append(f"set weight {backend}/{name} {weight}")
        commands.append(f"set server {backend}/{name} state ready")
    for server in spare:
        if not server.maint:
            commands.append(f"set server {backend}/{server.name} state maint")
        elif _dynamic_number(server.name):
            commands.append(f"del server {backend}/{server.name}")
    return commands


class HaproxyController:
    """HAProxy in front of the file's TCP listeners (and, with ``http_bind``, the HTTP
    frontend of the catalog's ``urlprefix-`` routes); ``start``/``close`` as ``Proxy``'s."""

    status_server = None  # HAProxy has its own stats; the command reads this as Proxy's

    def __init__(
        self, config: ProxyConfig, api: ApiClient, options: HaproxyOptions, *, wait: str = "5m"
    ) -> None:
        self.api = api
        self.wait = wait
        self.options = options
        self.listeners = [item for item in config.listeners if item.protocol == "tcp"]
        self.settings = HaproxySettings(
            options.admin_socket, slots=options.slots, http_bind=options.http_bind
        )
        self.runtime = RuntimeClient(options.admin_socket)
        self.master = MasterClient(options.master_socket)
        self.watcher = UpstreamWatcher(api, wait=wait)
        self.routes: list[Route] = []
        self.reloads = 0
        self._backends: dict[Selector, list[str]] = {}
        self._desired: dict[str, tuple[Upstream, ...]] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._process: asyncio.subprocess.Process | None = None
        for item in config.listeners:
            if item.protocol != "tcp":
                log.warning("%s: left out, HAProxy proxies TCP only", item.name)
        if config.meta_listeners or config.vip_listeners:
            log.info("with -haproxy, listeners come from the -config file only")

    async def start(self) -> None:
        if not self.listeners and not self.options.http_bind:
            raise StartError("-haproxy: no TCP listener in the -config file and no -haproxy-http")
        if self.options.http_bind:
            try:
                self.routes = self._routes_in((await self.api.get("/v1/catalog/services")).json())
            except ApiError as exc:  # the routes then come with the first answer, and a reload
                log.warning("haproxy: cannot read the catalog's services yet: %s", exc)
        try:
            changed = self._write_file()
        except OSError as exc:
            raise StartError(f"-haproxy: {self.options.config_path}: {exc.strerror}") from None
        try:
            if self.options.binary:
                await self._spawn()
            elif changed:
                await self._reload()
        except (OSError, TimeoutError, HaproxyError) as exc:
            await self.close()
            raise StartError(f"-haproxy: {exc}") from None
        self.watcher.on_update(self._apply)
        self._follow(self._selectors())
        self._tasks.append(asyncio.create_task(self._converge(), name="haproxy runtime"))
        if self.options.http_bind:
            self._tasks.append(asyncio.create_task(self._follow_routes(), name="haproxy routes"))
        if self._process is not None:
            self._tasks.append(asyncio.create_task(self._supervise(), name="haproxy process"))

    def _selectors(self) -> dict[Selector, list[str]]:
        """Each upstream query and the backends it feeds, for the listeners and routes in force."""
        out: dict[Selector, list[str]] = {}
        for listener in self.listeners:
            out.setdefault(Selector.of(listener), []).append(backend_name(listener))
        for route in self.routes:
            out.setdefault(Selector(route.service, (route.tag,)), []).append(route.backend)
        return out

    def _follow(self, wanted: dict[Selector, list[str]]) -> None:
        old, self._backends = self._backends, wanted
        for selector in wanted.keys() - old.keys():
            self.watcher.watch(selector)
        for selector in old.keys() - wanted.keys():
            self.watcher.release(selector)
        live = {b for names in wanted.values() for b in names}
        for backend in set(self._desired) - live:
            del self._desired[backend]
        self._dirty &= live
        for selector in wanted:
            current = self.watcher.current(selector)
            if current is not None:
                self._apply(current)

    def _write_file(self) -> bool:
        """Write the file for the listeners and routes in force; whether it changed."""
        text = render(self.listeners, self.settings, self.routes)
        return write_if_changed(self.options.config_path, text, create_dirs=False)

    def _routes_in(self, services: Any) -> list[Route]:
        routes, problems = routes_of(services if isinstance(services, dict) else {})
        for problem in problems:
            log.warning("haproxy: route left out: %s", problem)
        return routes

    async def _follow_routes(self) -> None:
        """A new route set is a new file and a reload; members stay with the runtime API."""
        while True:
            try:
                async for resp in self.api.watch("/v1/catalog/services", wait=self.wait):
                    routes = self._routes_in(resp.json())
                    if routes != self.routes:
                        self.routes = routes
                        await self._rewrite()
            except ApiError as exc:  # an ACL denial may be lifted: keep asking, slowly
                log.error("haproxy: the agent refused the services query: %s; retrying", exc.message)
                await asyncio.sleep(Backoff().maximum)

    async def _rewrite(self) -> None:
        while True:
            try:
                self._write_file()
                await self._reload()
                break
            except (OSError, TimeoutError, HaproxyError) as exc:
                log.warning("haproxy: reload for a new route set failed: %s; retrying", exc)
                await asyncio.sleep(RETRY_DELAY)
        self._follow(self._selectors())

    async def _supervise(self) -> None:
        """A HAProxy started here that exits is started again on the file as written, and its
        slots are filled afresh: the listeners come back without waypost being restarted."""
        while self._process is not None:
            status = await self._process.wait()
            log.error("haproxy: exited with status %d; starting it again", status)
            await asyncio.sleep(RETRY_DELAY)
            try:
                await self._spawn()
            except (OSError, TimeoutError, HaproxyError) as exc:
                log.error("haproxy: cannot start it: %s", exc)
                continue
            self._dirty |= set(self._desired)
            self._wake.set()

    async def _spawn(self) -> None:
        """HAProxy on the file, from a clean slate: no state of an earlier run is loaded, and
        no earlier HAProxy's socket is mistaken for the new one's."""
        for path in (self.options.master_socket, self.options.admin_socket, self.settings.state_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._process = await asyncio.create_subprocess_exec(
            self.options.binary, "-W", "-S", self.options.master_socket, "-f", self.options.config_path
        )
        await self._wait_for_worker(0)

    async def _reload(self) -> None:
        """Save the servers' state where the new worker loads it, so no slot starts empty,
        then reload; the old worker finishes its connections."""
        before = await self.runtime.worker_pid()
        write_if_changed(
            self.settings.state_file, await self.runtime.raw("show servers state"), create_dirs=False
        )
        await self.master.reload()
        await self._wait_for_worker(before)
        self.reloads += 1
        self._dirty |= set(self._desired)
        self._wake.set()
        log.info("haproxy: reloaded for a new listener or route set")

    async def _wait_for_worker(self, old_pid: int) -> None:
        """Until the master's only current worker is a new one and the admin socket answers
        from it alone: right after a reload both workers may still accept on the shared
        socket, and a command the old one took would be lost with it."""
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                if self._process is not None and self._process.returncode is not None:
                    raise HaproxyError(f"haproxy exited with status {self._process.returncode}")
                with contextlib.suppress(OSError, HaproxyError):
                    workers = await self.master.workers()
                    if len(workers) == 1 and workers[0] != old_pid:
                        answers = {await self.runtime.worker_pid() for _ in range(3)}
                        if answers == {workers[0]}:
                            return
                await asyncio.sleep(0.05)

    def _apply(self, update: UpstreamUpdate) -> None:
        usable, named = addressable(update.upstreams)
        if named:
            addresses = ", ".join(sorted({up.address or "(empty)" for up in named}))
            log.warning("service %r: %s not an IP address, which HAProxy's runtime API needs; left out",
                        update.service, addresses)  # fmt: skip
        for backend in self._backends.get(update.selector, ()):
            self._desired[backend] = usable
            self._dirty.add(backend)
        self._wake.set()

    async def _converge(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                batch, self._dirty = self._dirty, set()
                failed = set()
                for backend in sorted(batch):  # one failing backend never holds up the others
                    try:
                        await self._sync(backend)
                    except (OSError, TimeoutError, HaproxyError) as exc:
                        log.warning("haproxy: backend %s: %s; retrying", backend, exc)
                        failed.add(backend)
                if failed:
                    self._dirty |= failed
                    await asyncio.sleep(RETRY_DELAY)

    async def _sync(self, backend: str) -> None:
        servers = await self.runtime.servers(backend)
        for command in plan(backend, servers, self._desired.get(backend, ())):
            try:
                await self.runtime.run(command)
            except HaproxyError as exc:
                if not command.startswith("del server"):
                    raise
                log.debug("haproxy: %s (kept for the next round)", exc)

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.watcher.close()
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), START_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
