"""``waypost template``: consul-template's command line over ``waypost.template``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from waypost.cli.client import ClientError, client_from
from waypost.cli.daemon import cancel_on_termination
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.client import ApiClient
from waypost.template.config import (
    Config,
    ConfigError,
    ExecSpec,
    apply_file,
    parse_template_flag,
    parse_wait,
    validate,
)
from waypost.template.runner import Runner

USAGE = """
Usage: waypost template [options]

  Renders templates written in Go's text/template language with consul-template's
  functions (service, key, ls, tree, ...) from the agent's catalog and KV store,
  re-renders them when the data changes and runs a command after each change.

      $ waypost template -template "haproxy.ctmpl:/etc/haproxy/haproxy.cfg:systemctl reload haproxy"
      $ waypost template -once -dry -template "in.ctmpl:out.conf"
      $ waypost template -config template.hcl
"""

_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "err": logging.ERROR, "error": logging.ERROR}  # fmt: skip


def _flags() -> FlagSet:
    flags = FlagSet(USAGE, server=False)
    flags.repeated("template", "A template as source:destination[:command]; repeatable.", "template")
    flags.repeated(
        "config", "An HCL or JSON configuration file in consul-template's format; repeatable.", "path"
    )
    flags.boolean("once", False, "Render every template once, run the commands, and exit.")
    flags.boolean("dry", False, "Print each rendered template to stdout instead of writing it.")
    flags.string("wait", "", 'Quiescence as min[:max] ("2s:10s"); max defaults to 4 x min.', "duration")
    flags.string("exec", "", "A command to run and supervise once every template has rendered.", "command")
    flags.string(
        "exec-reload-signal", "", "The signal sent to the -exec child after a change (default: restart)."
    )
    flags.string("exec-kill-signal", "SIGTERM", "The signal that stops the -exec child.")
    flags.duration("exec-kill-timeout", 30.0, "How long the -exec child has to stop before SIGKILL.")
    flags.duration("max-stale", 0.0, "Let any server answer reads (stale reads) when set above zero.")
    flags.string("log-level", "", "trace, debug, info, warn or err (default warn).")
    flags.string(
        "consul-addr", "", "The agent's HTTP address (consul-template's name for -http-addr).", "address"
    )
    flags.string("consul-token", "", "The ACL token (consul-template's name for -token).")
    flags.boolean("err-on-failed-lookup", False, "Fail when a key a template reads does not exist.")
    flags.boolean("dedup", False, "Elect one renderer per template through a KV lock (de-duplication mode).")
    return flags


def build_config(parsed: Parsed) -> Config:
    """Files first, then flags (flags win), as consul-template merges them."""
    config = Config()
    for path in parsed.strings("config"):
        apply_file(config, path)
    config.templates += [parse_template_flag(t) for t in parsed.strings("template")]
    given = parsed.given
    if "wait" in given:
        config.wait = parse_wait(parsed.string("wait"), "-wait")
    config.once = config.once or parsed.boolean("once")
    config.dry = parsed.boolean("dry")
    config.err_on_failed_lookup = config.err_on_failed_lookup or parsed.boolean("err-on-failed-lookup")
    config.dedup = config.dedup or parsed.boolean("dedup")
    if "max-stale" in given:
        config.max_stale = parsed.seconds("max-stale")
    if "log-level" in given:
        config.log_level = parsed.string("log-level")
    config.address = (
        parsed.string("http-addr")
        or parsed.string("consul-addr")
        or config.address
        or os.environ.get("WAYPOST_HTTP_ADDR", "")
    )
    if given & {"token", "token-file"}:
        try:
            config.token = client_from(parsed).token
        except ClientError as err:
            raise ConfigError(str(err)) from None
    config.token = config.token or parsed.string("consul-token") or os.environ.get("WAYPOST_HTTP_TOKEN", "")
    if parsed.string("exec"):
        config.exec = ExecSpec(
            [parsed.string("exec")],
            parsed.string("exec-reload-signal"),
            parsed.string("exec-kill-signal"),
            parsed.seconds("exec-kill-timeout"),
        )
    if config.log_level.lower() not in _LEVELS:
        raise ConfigError(f"log_level: unknown level {config.log_level!r}")
    validate(config)
    return config


async def _main(config: Config) -> int:
    address = config.address or None
    if address and config.ssl and "://" not in address:
        address = "https://" + address
    async with ApiClient(address, token=config.token or None) as api:
        runner = Runner(config, api)
        cancel_on_termination()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, runner.reload)
        try:
            return await runner.run()
        except asyncio.CancelledError:
            return 0


def _body(parsed: Parsed) -> int:
    if parsed.args:
        print(f"waypost template: unexpected argument {parsed.args[0]!r}", file=sys.stderr)
        return 1
    try:
        config = build_config(parsed)
    except ConfigError as err:
        print(f"waypost template: {err}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=_LEVELS[config.log_level.lower()],
        format="%(asctime)s [%(levelname)s] (template) %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(_main(config))


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _body)
