"""``waypost proxy``: the built-in health-aware L4 proxy's command line over ``waypost.proxy``."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from waypost.cli.client import ClientError, client_from
from waypost.cli.daemon import cancel_on_termination
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.client import ApiClient
from waypost.proxy.config import ConfigError, ProxyConfig, load_file, split_hostport
from waypost.proxy.haproxy import HaproxyController, HaproxyOptions
from waypost.proxy.runner import Proxy, StartError
from waypost.proxy.sidecar import Sidecar, SidecarConfig, SidecarError
from waypost.proxy.status import StatusServer

USAGE = """
Usage: waypost proxy [options]

  Proxies TCP and UDP connections to the passing instances of services, following the
  catalog with blocking queries. Listeners come from the -config file
  (proxy { listener { service = "web", bind = "127.0.0.1:9000" } }), from
  registrations that carry Meta.proxy_port and, with -vip, from the virtual IPs:
  each one is listened on at every port of the instances behind it.

      $ waypost proxy -config proxy.hcl
      $ waypost proxy -config proxy.hcl -status-addr 127.0.0.1:9100
      $ waypost proxy -vip

  With -haproxy, a real HAProxy serves the file's TCP listeners instead: waypost writes
  its configuration to that path and applies every catalog change through the runtime
  API on -haproxy-socket, reloading (master CLI on <socket>.master) only when the
  listener set changes. -haproxy-bin starts HAProxy too (master-worker) and stops it.
  -haproxy-http adds an HTTP frontend routing by Fabio-style tags (urlprefix-host/path).

      $ waypost proxy -config proxy.hcl -haproxy /run/haproxy.cfg \\
          -haproxy-socket /run/haproxy.sock -haproxy-bin /usr/sbin/haproxy

  With -sidecar-for, it is the Connect sidecar of a service (its registered connect-proxy)
  (as consul connect proxy): mTLS with the service's certificate on the registration's
  port, every connection authorized by intention, and a listener per upstream that
  reaches the destination's sidecars over mTLS. waypost connect proxy is the same.

      $ waypost proxy -sidecar-for web
      $ waypost connect proxy -service web -upstream db:9191 \\
          -listen 127.0.0.1:21000 -service-addr 127.0.0.1:8080
"""

_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "err": logging.ERROR, "error": logging.ERROR}  # fmt: skip


def _flags() -> FlagSet:
    flags = FlagSet(USAGE, server=False)
    flags.string("config", "", "An HCL or JSON file with the proxy block.", "path")
    flags.string(
        "status-addr", "", "ip:port of the status endpoint (GET /v1/proxy/status); overrides the file's."
    )
    flags.string("log-level", "info", "trace, debug, info, warn or err.")
    flags.boolean("vip", False, "Listen on every virtual IP, at the ports of the instances behind it.")
    flags.string("haproxy", "", "Drive a real HAProxy: the haproxy.cfg path waypost writes.", "path")
    flags.string("haproxy-socket", "", "HAProxy's admin socket (runtime API), with -haproxy.", "path")
    flags.string("haproxy-bin", "", "Start this HAProxy binary (master-worker), with -haproxy.", "path")
    flags.string("haproxy-http", "", "ip:port of an HTTP frontend routing by urlprefix- tags, with -haproxy.")
    flags.string("sidecar-for", "", "The ID of the service whose registered sidecar to run.", "id")
    flags.string("service", "", "Without a registration: the service this proxy represents.", "name")
    flags.string("listen", "", "With -service: ip:port of the public mTLS listener.")
    flags.string("service-addr", "", "With -listen: ip:port of the local service.")
    flags.repeated("upstream", "With -service: name:port of an upstream's local listener (repeatable).")
    return flags


def _config(parsed: Parsed) -> ProxyConfig:
    config = load_file(parsed.string("config")) if parsed.string("config") else ProxyConfig()
    if parsed.string("status-addr"):
        split_hostport(parsed.string("status-addr"), "-status-addr")
        config.status_addr = parsed.string("status-addr")
    config.vip_listeners = config.vip_listeners or parsed.boolean("vip")
    if parsed.string("log-level").lower() not in _LEVELS:
        raise ConfigError(f"-log-level: unknown level {parsed.string('log-level')!r}")
    if not config.listeners and not config.meta_listeners and not config.vip_listeners:
        raise ConfigError("no listeners: declare one in -config, enable meta_listeners or give -vip")
    return config


def _haproxy(parsed: Parsed) -> HaproxyOptions | None:
    if not parsed.string("haproxy"):
        if any(parsed.string(f"haproxy-{name}") for name in ("socket", "bin", "http")):
            raise ConfigError("-haproxy-socket, -haproxy-bin and -haproxy-http need -haproxy")
        return None
    if not parsed.string("haproxy-socket"):
        raise ConfigError("-haproxy needs -haproxy-socket (HAProxy's admin socket)")
    if parsed.string("haproxy-http"):
        split_hostport(parsed.string("haproxy-http"), "-haproxy-http")
    return HaproxyOptions(
        parsed.string("haproxy"),
        parsed.string("haproxy-socket"),
        parsed.string("haproxy-bin"),
        http_bind=parsed.string("haproxy-http"),
    )


async def _serve(config: ProxyConfig, address: str, token: str, haproxy: HaproxyOptions | None = None) -> int:
    log = logging.getLogger("waypost.proxy")
    async with ApiClient(address, token=token or None) as api:
        proxy = HaproxyController(config, api, haproxy) if haproxy else Proxy(config, api)
        cancel_on_termination()
        try:
            await proxy.start()
        except StartError as exc:
            log.error("%s", exc)
            return 1
        if proxy.status_server is not None:
            log.info("status endpoint on %s:%d", proxy.status_server.host, proxy.status_server.port)
        log.info("proxy running, agent at %s", api.address.url)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.info("stopping")
        finally:
            await proxy.close()
    return 0


async def _serve_sidecar(
    service_id: str, config: SidecarConfig | None, status_addr: str, address: str, token: str
) -> int:
    log = logging.getLogger("waypost.proxy")
    async with ApiClient(address, token=token or None) as api:
        sidecar = Sidecar(api, service_id, config=config)
        cancel_on_termination()
        status: StatusServer | None = None
        try:
            await sidecar.start()
            if status_addr:
                status = StatusServer(*split_hostport(status_addr, "-status-addr"), sidecar.status)
                await status.start()
                log.info("status endpoint on %s:%d", status.host, status.port)
        except (SidecarError, OSError) as exc:
            log.error("%s", exc)
            await sidecar.close()
            return 1
        log.info("sidecar %s for %s running, agent at %s", sidecar.proxy_id, service_id, api.address.url)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log.info("stopping")
        finally:
            if status is not None:
                await status.close()
            await sidecar.close()
    return 0


def _logging(parsed: Parsed) -> None:
    logging.basicConfig(
        level=_LEVELS[parsed.string("log-level").lower()],
        format="%(asctime)s [%(levelname)s] (proxy) %(message)s",
        stream=sys.stderr,
    )


def _body(parsed: Parsed) -> int:
    if parsed.args:
        print(f"waypost proxy: unexpected argument {parsed.args[0]!r}", file=sys.stderr)
        return 1
    connect = ("sidecar-for", "service", "listen", "service-addr")
    if any(parsed.string(name) for name in connect) or parsed.strings("upstream"):
        return _sidecar(parsed)
    try:
        config = _config(parsed)
        haproxy = _haproxy(parsed)
        cli = client_from(parsed)
    except (ConfigError, ClientError) as err:
        print(f"waypost proxy: {err}", file=sys.stderr)
        return 1
    _logging(parsed)
    import uvloop

    return uvloop.run(_serve(config, f"{cli.scheme}://{cli.hostport}", cli.token, haproxy))


def _sidecar(parsed: Parsed) -> int:
    service = parsed.string("service")
    config = None
    try:
        if parsed.string("config") or parsed.boolean("vip") or parsed.string("haproxy"):
            raise ConfigError(
                "-sidecar-for takes its listeners from the registration: no -config, -vip or -haproxy"
            )
        if service and parsed.string("sidecar-for"):
            raise ConfigError("'-service' and '-sidecar-for' can't both be specified")
        if service:
            listen, backend = parsed.string("listen"), parsed.string("service-addr")
            config = SidecarConfig.from_flags(service, listen, backend, parsed.strings("upstream"))
        elif parsed.string("listen") or parsed.string("service-addr") or parsed.strings("upstream"):
            raise ConfigError("-listen, -service-addr and -upstream need -service")
        if parsed.string("status-addr"):
            split_hostport(parsed.string("status-addr"), "-status-addr")
        if parsed.string("log-level").lower() not in _LEVELS:
            raise ConfigError(f"-log-level: unknown level {parsed.string('log-level')!r}")
        cli = client_from(parsed)
    except (ConfigError, ClientError, SidecarError) as err:
        print(f"waypost proxy: {err}", file=sys.stderr)
        return 1
    _logging(parsed)
    import uvloop

    address = f"{cli.scheme}://{cli.hostport}"
    service_id = parsed.string("sidecar-for") or service
    return uvloop.run(_serve_sidecar(service_id, config, parsed.string("status-addr"), address, cli.token))


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _body)
