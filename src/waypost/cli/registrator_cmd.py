"""``waypost registrator [options] [consul://host:port]``: Registrator's command line.

The flags, their defaults and the start-up checks are Registrator's, so a deployment
written for ``gliderlabs/registrator`` runs unchanged; the registry URI is optional
(the agent's address otherwise comes from ``-http-addr`` or ``CONSUL_HTTP_ADDR``) and
``-network`` and ``-hostname`` are additions.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from
from waypost.cli.daemon import cancel_on_termination
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost registrator [options] [<registry URI>]

  Registers the published ports of the containers of a Docker Engine (DOCKER_HOST,
  unix:// or tcp://) as services of a waypost agent, and keeps them in step as
  containers start, stop, die and are removed. The registry URI is consul://host:port
  or consul-tls://host:port; without it the agent is -http-addr or CONSUL_HTTP_ADDR.

      $ waypost registrator -ip 10.0.0.5 consul://127.0.0.1:8500
      $ DOCKER_HOST=tcp://10.0.0.7:2375 waypost registrator -internal -cleanup
"""


def _flags() -> FlagSet:
    flags = FlagSet(USAGE, server=False)
    flags.string("ip", "", "IP for ports mapped to the host.")
    flags.boolean("internal", False, "Use internal ports instead of published ones.")
    flags.boolean("explicit", False, "Only register containers which have SERVICE_NAME label set.")
    flags.string("tags", "", "Append tags for all registered services (comma list).")
    flags.integer("resync", 0, "Frequency with which services are resynchronized (seconds).")
    flags.boolean("cleanup", False, "Remove dangling services.")
    flags.string("deregister", "always", 'Deregister exited services "always" or "on-success".')
    flags.integer(
        "retry-attempts",
        0,
        "Max retry attempts to establish a connection with the backend. Use -1 for infinite.",
    )
    flags.integer("retry-interval", 2000, "Interval (in millisecond) between retry-attempts.")
    flags.integer("ttl", 0, "TTL of a heartbeat check on every service (seconds; default: none).")
    flags.integer("ttl-refresh", 0, "Frequency with which heartbeat checks are passed (seconds).")
    flags.string("network", "", "Network whose container address to use (a SERVICE_NETWORK label wins).")
    flags.string("hostname", socket.gethostname(), "Host name in service IDs; the default is this host's.")
    return flags


def _check(parsed: Parsed) -> str:
    """Registrator's start-up checks, in its words; '' when all hold."""
    ttl, refresh = parsed.integer("ttl"), parsed.integer("ttl-refresh")
    if (ttl == 0) != (refresh == 0):
        return "-ttl and -ttl-refresh must be specified together or not at all"
    if ttl > 0 and ttl <= refresh:
        return "-ttl must be greater than -ttl-refresh"
    if parsed.integer("retry-interval") <= 0:
        return "-retry-interval must be greater than 0"
    if parsed.string("deregister") not in ("always", "on-success"):
        return '-deregister must be "always" or "on-success"'
    if len(parsed.args) > 1:
        return (
            f"Extra unparsed arguments:\n  {' '.join(parsed.args[1:])}\n"
            "Options should come before the registry URI argument."
        )
    if parsed.args and parsed.args[0].partition("://")[0] not in ("consul", "consul-tls", "http", "https"):
        return f"unrecognized adapter: {parsed.args[0]}"
    return ""


def _resolve(hostname: str) -> str:
    try:
        return socket.gethostbyname(hostname)
    except OSError:
        return ""


async def _serve(parsed: Parsed, address: str, token: str) -> int:
    from waypost.client import ApiClient, ApiError
    from waypost.registrator.engine import Engine, EngineError
    from waypost.registrator.services import Options, split_tags
    from waypost.registrator.watcher import Registrator, Settings

    log = logging.getLogger("waypost.registrator")
    hostname = parsed.string("hostname")
    options = Options(
        hostname=hostname,
        host_ip=parsed.string("ip"),
        resolved_host_ip=await asyncio.to_thread(_resolve, hostname),
        internal=parsed.boolean("internal"),
        explicit=parsed.boolean("explicit"),
        tags=tuple(split_tags(parsed.string("tags"))),
        network=parsed.string("network"),
        ttl=parsed.integer("ttl"),
    )
    settings = Settings(
        options,
        deregister=parsed.string("deregister"),
        resync=float(parsed.integer("resync")),
        cleanup=parsed.boolean("cleanup"),
        ttl_refresh=float(parsed.integer("ttl-refresh")),
    )
    try:
        api = ApiClient(address, token=token)
        engine = Engine()
    except (ValueError, EngineError) as exc:
        log.error("%s", exc)
        return 1
    if options.host_ip:
        log.info("Forcing host IP to %s", options.host_ip)
    registrator = Registrator(engine, api, settings)
    cancel_on_termination()
    try:
        await registrator.connect(parsed.integer("retry-attempts"), parsed.integer("retry-interval") / 1000)
        log.info("Using %s agent at %s; listening for events from %s", api.address.scheme, api.address.url,
                 engine.host)  # fmt: skip
        await registrator.run()
    except ApiError as exc:
        log.error("%s", exc)
        return 1
    except asyncio.CancelledError:
        log.info("Stopping")
    finally:
        await engine.close()
        await api.close()
    return 0


def _run(parsed: Parsed) -> int:
    problem = _check(parsed)
    if problem:
        ui.error(problem)
        return 1
    try:
        # The CLI's own resolution of -http-addr, -token and their environment variables.
        cli = client_from(parsed)
    except ClientError as exc:
        ui.error(str(exc))
        return 1
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%Y/%m/%d %H:%M:%S"
    )
    logging.getLogger("waypost.registrator").info("Starting registrator ...")
    address = parsed.args[0] if parsed.args else f"{cli.scheme}://{cli.hostport}"
    return asyncio.run(_serve(parsed, address, cli.token))


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _run)
