"""The child's lifetime: start it, register it once it listens, pass signals on, clean up.

The child runs in its own process group so that a Ctrl-C at a terminal reaches it once,
forwarded by the sidekick, not twice; the sidekick exits with the child's status (128+N
for a child killed by signal N, as shells report it) so scripts and supervisors see the
service's own outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from urllib.parse import quote

import aiohttp

from waypost.client import ApiClient, ApiError, Backoff
from waypost.sidekick.keeper import keep_registered, log
from waypost.sidekick.probes import PASSING, Probe, accepts, probe_http, probe_tcp
from waypost.sidekick.service_env import instance_address, service_env
from waypost.sidekick.spec import CheckMode, Spec

__all__ = ["FORWARDED", "ListenTimeoutError", "discovery_env", "supervise"]

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
STOP_GRACE = 10.0
"""Between SIGTERM and SIGKILL for a child the sidekick itself has to stop."""
LISTEN_POLL = 0.1
DEREGISTER_TIMEOUT = 10.0
"""The child has exited: deregistering must not keep its status from the caller for long."""


class ListenTimeoutError(Exception):
    """The child never accepted connections on its port within ``-listen-timeout``."""


async def discovery_env(api: ApiClient, names: list[str], limit: float) -> dict[str, str]:
    """Kubernetes-style variables for one healthy instance of each service, looked up once.

    An unreachable agent is retried with back-off for ``limit`` seconds; a service with no
    healthy instance is logged and left out, as Kubernetes leaves out Services created later.
    """
    env: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    backoff = Backoff(initial=0.25, maximum=5.0)
    for name in names:
        while True:
            try:
                resp = await api.get(f"/v1/health/service/{quote(name, safe='')}", {"passing": True})
                break
            except ApiError as exc:
                delay = backoff.next()
                if (exc.status and exc.status < 500) or loop.time() + delay > deadline:
                    raise
                log.warning(
                    "looking up service %r for -env-from failed: %s; retrying in %.1fs", name, exc, delay
                )
                await asyncio.sleep(delay)
        found = instance_address(resp.json() or [])
        if found is None:
            log.warning("no healthy instance of service %r: its variables are not set", name)
            continue
        env.update(service_env(name, *found))
    return env


def exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


async def _wait_listening(spec: Spec, child: asyncio.subprocess.Process) -> None:
    """Until 127.0.0.1:port accepts; returns early if the child exits (nothing to register)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + spec.listen_timeout
    while child.returncode is None:
        if await accepts(spec.port, LISTEN_POLL):
            return
        if loop.time() >= deadline:
            raise ListenTimeoutError(
                f"{spec.command[0]} did not listen on 127.0.0.1:{spec.port} within {spec.listen_timeout:g}s"
            )
        await asyncio.sleep(LISTEN_POLL)


async def _stop(child: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.terminate()
    try:
        await asyncio.wait_for(child.wait(), STOP_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()


async def _deregister(spec: Spec, api: ApiClient) -> None:
    path = f"/v1/agent/service/deregister/{quote(spec.id, safe='')}"
    try:
        resp = await api.request("PUT", path, read_timeout=DEREGISTER_TIMEOUT)
    except ApiError as exc:
        log.error("could not deregister service %r: %s", spec.id, exc)
        return
    if resp.status == 200:
        log.info("deregistered service %r", spec.id)
    elif resp.status != 404:  # 404: the agent already forgot it (restarted), nothing to remove
        log.error("could not deregister service %r: %s", spec.id, ApiError(resp.status, resp.body.decode()))


async def _register_while_running(
    spec: Spec,
    api: ApiClient,
    child: asyncio.subprocess.Process,
    http: aiohttp.ClientSession,
    registering: asyncio.Event,
) -> None:
    """Wait until the child listens, then keep it registered until cancelled."""
    if not spec.no_wait:
        await _wait_listening(spec, child)
        if child.returncode is not None:
            return
    registering.set()
    timeout = min(spec.heartbeat, 10.0)

    async def probe() -> Probe:
        if spec.mode is CheckMode.HTTP:
            return await probe_http(http, spec.probe_url, timeout)
        if spec.mode is CheckMode.TCP:
            return await probe_tcp(spec.port, timeout)
        return PASSING, f"{spec.command[0]} (pid {child.pid}) is running"

    await keep_registered(spec, api, probe)


async def supervise(spec: Spec, api: ApiClient, env: Mapping[str, str], agent_wait: float) -> int:
    """Run the child to completion; its exit status, or 1 if the sidekick had to stop it."""
    extra = await discovery_env(api, spec.env_from, agent_wait)
    if await accepts(spec.port, LISTEN_POLL) and not spec.no_wait:
        log.warning("127.0.0.1:%d already accepts connections before %s starts", spec.port, spec.command[0])
    loop = asyncio.get_running_loop()
    forward = _Forwarder()
    # Installed before the child starts: a signal ignored when the sidekick started (a
    # background job's SIGINT) would otherwise stay ignored in the child and never stop it.
    for sig in FORWARDED:
        loop.add_signal_handler(sig, forward, sig)
    try:
        try:
            child = await asyncio.create_subprocess_exec(*spec.command, env={**env, **extra}, process_group=0)
        except OSError as exc:
            log.error("could not start %s: %s", spec.command[0], exc.strerror or exc)
            return 127 if isinstance(exc, FileNotFoundError) else 126
        forward.attach(child)
        log.info("started %s (pid %d)", spec.command[0], child.pid)
        registering = asyncio.Event()
        stopped = await _run_child(spec, api, child, registering)
    finally:
        for sig in FORWARDED:
            loop.remove_signal_handler(sig)
    status = exit_status(child.returncode or 0)
    log.info("%s exited with status %d", spec.command[0], status)
    if registering.is_set():
        await _deregister(spec, api)
    return 1 if stopped else status


async def _run_child(
    spec: Spec, api: ApiClient, child: asyncio.subprocess.Process, registering: asyncio.Event
) -> bool:
    """Until the child exits; True if the sidekick had to stop it (it never listened)."""
    stopped = False
    async with aiohttp.ClientSession() as http:
        keeper = asyncio.create_task(_register_while_running(spec, api, child, http, registering))
        exited = asyncio.create_task(child.wait())
        await asyncio.wait([keeper, exited], return_when=asyncio.FIRST_COMPLETED)
        failure = keeper.exception() if keeper.done() else None
        if failure is not None:
            log.error("%s; stopping it", failure)
            await _stop(child)
            stopped = True
        await exited
        if not keeper.done():
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
    return stopped


class _Forwarder:
    """Passes signals on to the child; one that arrives while the child is being started is
    held and passed on as soon as it exists, so none is lost."""

    def __init__(self) -> None:
        self._child: asyncio.subprocess.Process | None = None
        self._pending: list[signal.Signals] = []

    def attach(self, child: asyncio.subprocess.Process) -> None:
        self._child = child
        for sig in self._pending:
            self(sig)
        self._pending.clear()

    def __call__(self, sig: signal.Signals) -> None:
        child = self._child
        if child is None:
            self._pending.append(sig)
        elif child.returncode is None:
            log.info("forwarding %s to pid %d", sig.name, child.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, sig)
