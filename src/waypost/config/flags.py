"""``consul agent`` command-line flags, parsed with Go's ``flag`` package rules.

Go's rules differ from argparse's: ``-x`` and ``--x`` are the same flag, a
value follows as ``-x=v`` or ``-x v``, boolean flags only take ``-x`` or
``-x=false`` (never ``-x false``), parsing stops at the first non-flag
argument or at ``--``, and the error messages below are Go's, word for word,
because scripts and tests match on them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from waypost.config.errors import FlagError
from waypost.gostrconv import GO_BOOLS, go_quote, num_error

__all__ = ["ParsedFlags", "parse_flags"]


class _Kind(Enum):
    BOOL = "bool"
    INT = "int"
    STRING = "string"
    LIST = "list"  # repeatable, values appended
    MAP = "map"  # repeatable key:value pairs


#: Every flag ``consul agent`` defines (agent/config/flags.go) plus waypost's -store:
#: name -> (kind, config key path). Flags that steer loading rather than set a
#: key (-config-file, -dev...) name a ParsedFlags field instead.
_FLAGS: dict[str, tuple[_Kind, str]] = {
    "advertise": (_Kind.STRING, "advertise_addr"),
    "advertise-wan": (_Kind.STRING, "advertise_addr_wan"),
    "allow-write-http-from": (_Kind.LIST, "http_config.allow_write_http_from"),
    "alt-domain": (_Kind.STRING, "alt_domain"),
    "auto-reload-config": (_Kind.BOOL, "auto_reload_config"),
    "bind": (_Kind.STRING, "bind_addr"),
    "bootstrap": (_Kind.BOOL, "bootstrap"),
    "bootstrap-expect": (_Kind.INT, "bootstrap_expect"),
    "check_output_max_size": (_Kind.INT, "check_output_max_size"),
    "client": (_Kind.STRING, "client_addr"),
    "config-dir": (_Kind.LIST, "paths"),
    "config-file": (_Kind.LIST, "paths"),
    "config-format": (_Kind.STRING, "config_format"),
    "data-dir": (_Kind.STRING, "data_dir"),
    "datacenter": (_Kind.STRING, "datacenter"),
    "default-query-time": (_Kind.STRING, "default_query_time"),
    "dev": (_Kind.BOOL, "dev"),
    "disable-host-node-id": (_Kind.BOOL, "disable_host_node_id"),
    "disable-keyring-file": (_Kind.BOOL, "disable_keyring_file"),
    "dns-port": (_Kind.INT, "ports.dns"),
    "domain": (_Kind.STRING, "domain"),
    "enable-local-script-checks": (_Kind.BOOL, "enable_local_script_checks"),
    "enable-script-checks": (_Kind.BOOL, "enable_script_checks"),
    "encrypt": (_Kind.STRING, "encrypt"),
    "grpc-port": (_Kind.INT, "ports.grpc"),
    "grpc-tls-port": (_Kind.INT, "ports.grpc_tls"),
    "hcl": (_Kind.LIST, "hcl"),
    "http-port": (_Kind.INT, "ports.http"),
    "https-port": (_Kind.INT, "ports.https"),
    "join": (_Kind.LIST, "start_join"),
    "join-wan": (_Kind.LIST, "start_join_wan"),
    "log-file": (_Kind.STRING, "log_file"),
    "log-json": (_Kind.BOOL, "log_json"),
    "log-level": (_Kind.STRING, "log_level"),
    "log-rotate-bytes": (_Kind.INT, "log_rotate_bytes"),
    "log-rotate-duration": (_Kind.STRING, "log_rotate_duration"),
    "log-rotate-max-files": (_Kind.INT, "log_rotate_max_files"),
    "max-query-time": (_Kind.STRING, "max_query_time"),
    "node": (_Kind.STRING, "node_name"),
    "node-id": (_Kind.STRING, "node_id"),
    "node-meta": (_Kind.MAP, "node_meta"),
    "non-voting-server": (_Kind.BOOL, "read_replica"),
    "pid-file": (_Kind.STRING, "pid_file"),
    "primary-gateway": (_Kind.LIST, "primary_gateways"),
    "protocol": (_Kind.INT, "protocol"),
    "raft-protocol": (_Kind.INT, "raft_protocol"),
    "read-replica": (_Kind.BOOL, "read_replica"),
    "recursor": (_Kind.LIST, "recursors"),
    "rejoin": (_Kind.BOOL, "rejoin_after_leave"),
    "retry-interval": (_Kind.STRING, "retry_interval"),
    "retry-interval-wan": (_Kind.STRING, "retry_interval_wan"),
    "retry-join": (_Kind.LIST, "retry_join"),
    "retry-join-wan": (_Kind.LIST, "retry_join_wan"),
    "retry-max": (_Kind.INT, "retry_max"),
    "retry-max-wan": (_Kind.INT, "retry_max_wan"),
    "segment": (_Kind.STRING, "segment"),
    "serf-lan-allowed-cidrs": (_Kind.LIST, "serf_lan_allowed_cidrs"),
    "serf-lan-bind": (_Kind.STRING, "serf_lan"),
    "serf-lan-port": (_Kind.INT, "ports.serf_lan"),
    "serf-wan-allowed-cidrs": (_Kind.LIST, "serf_wan_allowed_cidrs"),
    "serf-wan-bind": (_Kind.STRING, "serf_wan"),
    "serf-wan-port": (_Kind.INT, "ports.serf_wan"),
    "server": (_Kind.BOOL, "server"),
    "server-port": (_Kind.INT, "ports.server"),
    "store": (_Kind.STRING, "store"),
    "syslog": (_Kind.BOOL, "enable_syslog"),
    "ui": (_Kind.BOOL, "ui_config.enabled"),
    "ui-content-path": (_Kind.STRING, "ui_config.content_path"),
    "ui-dir": (_Kind.STRING, "ui_config.dir"),
}


@dataclass
class ParsedFlags:
    #: Config keys set on the command line, nested like a config file.
    config: dict[str, Any] = field(default_factory=dict)
    #: -config-file and -config-dir arguments, in the order given.
    paths: list[str] = field(default_factory=list)
    config_format: str = ""
    hcl: list[str] = field(default_factory=list)
    dev: bool = False


_LOADER_FIELDS = frozenset(f.name for f in fields(ParsedFlags)) - {"config"}

_GO_INT = re.compile(r"[+-]?\d+")


def parse_flags(argv: Sequence[str]) -> ParsedFlags:
    """Parse the arguments after ``agent``; raises FlagError with Go's wording."""
    parsed = ParsedFlags()
    args = list(argv)
    while args:
        arg = args[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        del args[0]
        if arg == "--":
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name[0] in "-=":
            raise FlagError(f"bad flag syntax: {arg}")
        name, has_value, value = name.partition("=")
        if name not in _FLAGS:
            if name in ("h", "help"):
                raise FlagError("flag: help requested")
            raise FlagError(f"flag provided but not defined: -{name}")
        kind, target = _FLAGS[name]
        if kind is _Kind.BOOL:
            if has_value and value not in GO_BOOLS:
                raise FlagError(
                    f"invalid boolean value {go_quote(value)} for -{name}: {num_error('ParseBool', value)}"
                )
            _store(parsed, kind, target, GO_BOOLS[value] if has_value else True)
            continue
        if not has_value:
            if not args:
                raise FlagError(f"flag needs an argument: -{name}")
            value = args.pop(0)
        if kind is _Kind.INT and not _GO_INT.fullmatch(value):
            raise FlagError(f"invalid value {go_quote(value)} for flag -{name}: {num_error('Atoi', value)}")
        _store(parsed, kind, target, int(value) if kind is _Kind.INT else value)
    if args:
        raise FlagError(f"config: Unknown extra arguments: [{' '.join(args)}]")
    return parsed


def _store(parsed: ParsedFlags, kind: _Kind, target: str, value: bool | int | str) -> None:
    if target in _LOADER_FIELDS:
        if kind is _Kind.LIST:
            getattr(parsed, target).append(value)
        else:
            setattr(parsed, target, value)
        return
    *parents, leaf = target.split(".")
    section = parsed.config
    for part in parents:
        section = section.setdefault(part, {})
    if kind is _Kind.LIST:
        section.setdefault(leaf, []).append(value)
    elif kind is _Kind.MAP:
        key, _, item = str(value).partition(":")
        section.setdefault(leaf, {})[key] = item
    else:
        section[leaf] = value
