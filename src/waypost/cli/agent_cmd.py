"""``waypost agent``: load the configuration, run the agent until a signal or leave."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import sys
from collections.abc import Sequence

from waypost.agent.agent import Agent
from waypost.config import AgentConfig, ConfigError, FlagError, load_config
from waypost.store.base import StoreError


async def _serve(config: AgentConfig) -> int:
    agent = Agent(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reloads: set[asyncio.Task[None]] = set()

    def hup() -> None:
        async def reload() -> None:
            try:
                await agent.reload()
                logging.getLogger("waypost.agent").info("configuration reloaded")
            except ConfigError as exc:
                logging.getLogger("waypost.agent").error("reload failed: %s", exc)

        reloads.add(loop.create_task(reload()))
        reloads.difference_update({t for t in reloads if t.done()})

    loop.add_signal_handler(signal.SIGHUP, hup)
    signalled = asyncio.ensure_future(stop.wait())
    starting = asyncio.ensure_future(agent.start())
    await asyncio.wait([signalled, starting], return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await agent.stop()
        return 1
    starting.result()
    listeners = [
        f"{name} on {agent.http_addr}:{port}"
        for name, port in (("HTTP", agent.http_port), ("HTTPS", agent.https_port))
        if port
    ]
    print(f"==> waypost agent running: {', '.join(listeners) or 'no HTTP listener'}", flush=True)
    stopped = asyncio.ensure_future(agent.stopped.wait())
    await asyncio.wait([signalled, stopped], return_when=asyncio.FIRST_COMPLETED)
    signalled.cancel()
    stopped.cancel()
    if not agent.stopped.is_set():
        await agent.stop()
    print("==> waypost agent stopped", flush=True)
    return agent.exit_code


def _raise_open_files_limit() -> None:
    """Lift the soft limit on open files to the hard one, as Go's runtime does at start for
    Consul: each parked blocking query holds a socket (two on a client agent relaying it),
    and a soft limit of 1024 would refuse connections long before the per-client caps do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(argv: Sequence[str]) -> int:
    try:
        config = load_config(argv)
    except FlagError as exc:
        print(exc, file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"==> {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s",
    )
    for warning in config.warnings:
        logging.getLogger("waypost.config").warning("%s", warning)
    _raise_open_files_limit()
    try:
        import uvloop

        return uvloop.run(_serve(config))
    except (OSError, ValueError, StoreError) as exc:
        print(f"==> Error starting agent: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
