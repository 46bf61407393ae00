"""``waypost run``: register a process that knows nothing about the registry, from outside it.

The sidekick half of registration from outside the service; the flags are read here and
everything else lives in ``waypost.sidekick``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.client import ApiClient, ApiError
from waypost.sidekick.spec import DEFAULT_TTL, CheckMode, Spec, SpecError, split_names
from waypost.sidekick.supervisor import supervise

USAGE = """
Usage: waypost run [options] -- COMMAND [ARGS...]

  Starts COMMAND, registers it with the local agent as a service once it listens
  on -port, keeps its TTL check passing while it runs (and, with -check-http or
  -check-tcp, only while it answers), forwards signals to it, deregisters it when
  it exits and exits with its status. Re-registers when the agent restarts.

      $ waypost run -service web -port 8080 -check-http /health -- ./web --port 8080
      $ waypost run -service worker -port 9000 -env-from db,cache -- ./worker
"""


def _flags() -> FlagSet:
    fs = FlagSet(USAGE, server=False)
    fs.string("service", "", "Name of the service to register. Required.", "name")
    fs.integer("port", 0, "Port the command listens on, on 127.0.0.1 as well. Required.")
    fs.string("id", "", "ID of the service. The default is <service>-<port>.", "id")
    fs.string("address", "", "Address to register for the service. The default is the node's address.")
    fs.string("addr", "", "Address of the agent; the same as -http-addr.", "address")
    fs.repeated("tag", "Tag to add to the service. Can be given multiple times.", "tag")
    fs.mapping("meta", "Metadata to set on the service, as key=value. Can be given multiple times.")
    fs.string(
        "check-http",
        "",
        "Path (or http(s) URL) to GET every -check-interval; the check passes only while it answers "
        "2xx (429 is a warning), as Consul's HTTP checks do.",
        "path",
    )
    fs.boolean("check-tcp", False, "The check passes only while 127.0.0.1:<port> accepts connections.")
    fs.duration("check-ttl", DEFAULT_TTL, "TTL of the check the sidekick keeps passing. The default is 10s.")
    fs.duration(
        "check-interval",
        0.0,
        "Time between heartbeats (and probes). The default is a third of -check-ttl.",
    )
    fs.duration(
        "check-deregister-after",
        0.0,
        "Have the agent deregister the service once its check has been critical this long "
        "(at least 1m), e.g. after the sidekick was killed. The default is never.",
    )
    fs.boolean("no-wait", False, "Register at once instead of waiting until the command listens.")
    fs.duration(
        "listen-timeout",
        60.0,
        "How long the command may take to listen on -port before it is stopped. The default is 60s.",
    )
    fs.repeated(
        "env-from",
        "Services (comma-separated, or the flag repeated) whose healthy instance is passed to the "
        "command as Kubernetes-style variables: WEB_SERVICE_HOST, WEB_SERVICE_PORT, WEB_PORT_8080_TCP...",
        "services",
    )
    fs.duration(
        "agent-wait",
        30.0,
        "How long to retry an unreachable agent for the -env-from lookups. The default is 30s.",
    )
    return fs


def _spec(opts: Parsed) -> Spec:
    if opts.string("check-http") and opts.boolean("check-tcp"):
        raise SpecError("-check-http and -check-tcp are exclusive: choose one")
    mode = CheckMode.PROCESS
    if opts.string("check-http"):
        mode = CheckMode.HTTP
    elif opts.boolean("check-tcp"):
        mode = CheckMode.TCP
    return Spec(
        service=opts.string("service"),
        port=opts.integer("port"),
        command=list(opts.args),
        service_id=opts.string("id"),
        address=opts.string("address"),
        tags=opts.strings("tag"),
        meta=opts.mapping("meta"),
        mode=mode,
        http_path=opts.string("check-http"),
        ttl=opts.seconds("check-ttl"),
        interval=opts.seconds("check-interval"),
        no_wait=opts.boolean("no-wait"),
        listen_timeout=opts.seconds("listen-timeout"),
        env_from=split_names(opts.strings("env-from")),
        deregister_after=opts.seconds("check-deregister-after"),
    )


def _client(opts: Parsed) -> ApiClient:
    """The shared flags and environment as the other commands read them (token file included)."""
    if opts.string("addr"):
        if "http-addr" in opts.given:
            raise SpecError("-addr and -http-addr both name the agent: give one")
        opts.values["http-addr"] = opts.string("addr")
    settings = client_from(opts)
    try:
        return ApiClient(f"{settings.scheme}://{settings.hostport}", token=settings.token)
    except ValueError as exc:
        raise SpecError(str(exc)) from None


async def _main(spec: Spec, api: ApiClient, agent_wait: float) -> int:
    async with api:
        return await supervise(spec, api, os.environ, agent_wait)


def _run(opts: Parsed) -> int:
    try:
        spec = _spec(opts)
        api = _client(opts)
    except (SpecError, ClientError) as exc:
        ui.error(f"Error: {exc}")
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    try:
        return asyncio.run(_main(spec, api, opts.seconds("agent-wait")))
    except ApiError as exc:
        ui.error(f"Error querying Consul agent: {exc}")
        return 1
    except KeyboardInterrupt:  # before the child started: nothing to forward it to
        return 130


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _run)
