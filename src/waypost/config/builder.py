"""Assembling the agent configuration from the command line, files and defaults.

Sources are layered in ``consul agent``'s order (``agent/config/builder.go``):
the -dev defaults, the list-valued flags, every config file and directory in
the order given, the other flags, then each -hcl snippet. Putting list flags
first mirrors Consul, where merging concatenates lists: a -retry-join comes
before the retry_join of the files rather than after.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
from collections.abc import Sequence

from waypost.config.decode import Fragment, build, decode_source, merge
from waypost.config.errors import ConfigError, FlagError
from waypost.config.flags import parse_flags
from waypost.config.listeners import unserved_ports
from waypost.config.model import DEV_DEFAULTS, AgentConfig, TLSConfig
from waypost.config.sources import Source, parse_text, read_path
from waypost.config.validate import validate
from waypost.config.values import node_id

__all__ = ["check_config", "load_config", "reload_config"]

_NODE_ID_FILE = "node-id"


def load_config(argv: Sequence[str]) -> AgentConfig:
    """The configuration for ``agent`` with these arguments (those after the word ``agent``)."""
    return _prepare(_load(tuple(argv)), previous_node_id="")


def reload_config(previous: AgentConfig) -> AgentConfig:
    """Re-read the files and flags ``previous`` came from, as SIGHUP and /v1/agent/reload do.

    The node ID is kept when nothing pins it: an agent without a data_dir
    would otherwise become a different node on every reload.
    """
    return _prepare(_load(previous.argv), previous_node_id=previous.node_id)


def check_config(paths: Sequence[str], config_format: str = "") -> AgentConfig:
    """What ``validate`` checks: files and directories alone, loaded as ``agent`` would load them.

    Nothing is created on disk, so the node ID stays unset unless a file pins it.
    """
    argv = [arg for path in paths for arg in ("-config-file", path)]
    return _load((*argv, *(("-config-format", config_format) if config_format else ())))


def _load(argv: tuple[str, ...]) -> AgentConfig:
    flags = parse_flags(argv)
    if flags.config_format not in ("", "json", "hcl"):
        raise FlagError("config: -config-format must be either 'hcl' or 'json'")
    warnings: list[str] = []
    files = [src for path in flags.paths for src in read_path(path, flags.config_format or None, warnings)]
    snippets = [
        Source(f"flags-{i}.hcl", parse_text(f"flags-{i}.hcl", text, "hcl"))
        for i, text in enumerate(flags.hcl)
    ]

    flag_fragment = _decode(Source("flags", flags.config), warnings)
    flag_lists = {k: v for k, v in flag_fragment.items() if isinstance(v, tuple)}
    flag_values = {k: v for k, v in flag_fragment.items() if k not in flag_lists}

    merged: Fragment = {}
    layers = [
        *([_decode(Source("dev", DEV_DEFAULTS), warnings)] if flags.dev else []),
        flag_lists,
        *(_decode(src, warnings) for src in files),
        flag_values,
        *(_decode(src, warnings) for src in snippets),
    ]
    for layer in layers:
        merge(merged, layer)

    cfg = _derive(build(AgentConfig, merged), merged, dev=flags.dev)
    cfg = dataclasses.replace(cfg, dev=flags.dev, argv=argv)
    validate(cfg)
    warnings.extend(unserved_ports(cfg, [Source("flags", flags.config), *files, *snippets]))
    return dataclasses.replace(cfg, warnings=tuple(dict.fromkeys(warnings)))


def _prepare(cfg: AgentConfig, previous_node_id: str) -> AgentConfig:
    """Create data_dir and settle the node ID; only a valid configuration gets this far.

    data_dir is created even when the node ID is pinned: automation writes a
    config naming a fresh directory and the stores open files in it.
    """
    if cfg.data_dir:
        try:
            os.makedirs(cfg.data_dir, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"failed to create data_dir {cfg.data_dir}: {err.strerror}") from None
    return dataclasses.replace(cfg, node_id=cfg.node_id or previous_node_id or _stored_node_id(cfg.data_dir))


def _decode(source: Source, warnings: list[str]) -> Fragment:
    decoded = decode_source(source.name, source.data)
    warnings.extend(
        f"{source.name}: config key {key} is not supported by waypost and is ignored"
        for key in decoded.ignored
    )
    return decoded.fragment


def _derive(cfg: AgentConfig, merged: Fragment, *, dev: bool) -> AgentConfig:
    """Fill in the defaults that depend on other settings (see the field notes in model.py).

    The node ID is left to the caller, as it may touch data_dir.
    """
    advertise = cfg.advertise_addr or _advertise_from(cfg.bind_addr)
    return dataclasses.replace(
        cfg,
        node_name=(cfg.node_name or socket.gethostname()).strip(),
        primary_datacenter=cfg.primary_datacenter or cfg.datacenter,
        advertise_addr=advertise,
        advertise_addr_wan=cfg.advertise_addr_wan or advertise,
        bootstrap=cfg.bootstrap
        or (dev and cfg.server and cfg.bootstrap_expect == 0 and "bootstrap" not in merged),
        leave_on_terminate=merged.get("leave_on_terminate", not cfg.server),
        skip_leave_on_interrupt=merged.get("skip_leave_on_interrupt", cfg.server),
        enable_local_script_checks=merged.get("enable_local_script_checks", cfg.enable_script_checks),
        recursors=tuple(dict.fromkeys(cfg.recursors)),
        store=cfg.store or _default_store(cfg),
        tls=_inherit_tls_defaults(cfg.tls, merged.get("tls", {})),
        liveness=dataclasses.replace(
            cfg.liveness, heartbeat_scaled="heartbeat_interval" not in merged.get("liveness", {})
        ),
    )


def _inherit_tls_defaults(tls: TLSConfig, merged: Fragment) -> TLSConfig:
    """Each block (``https``, ``internal_rpc``, waypost's ``store``) takes from ``tls.defaults``
    the keys it leaves unset, as Consul's builder does, so users of a block read it alone."""
    defaults = merged.get("defaults", {})
    blocks = {}
    for name in ("https", "internal_rpc", "store"):
        own = merged.get(name, {})
        inherited = {key: value for key, value in defaults.items() if key not in own}
        blocks[name] = dataclasses.replace(getattr(tls, name), **inherited)
    return dataclasses.replace(tls, **blocks)


def _default_store(cfg: AgentConfig) -> str:
    if cfg.server and cfg.data_dir:
        return "sqlite://" + os.path.join(os.path.abspath(cfg.data_dir), "store.db")
    return ""


def _advertise_from(bind_addr: str) -> str:
    """Consul advertises the bind address, or, when bound to "any", an address of this host.

    For the latter the address the host would use to reach the outside is
    taken (a UDP "connect" sends nothing), falling back to loopback.
    """
    if bind_addr not in ("0.0.0.0", "::"):
        return bind_addr
    family, probe, fallback = (
        (socket.AF_INET6, "2001:db8::1", "::1")
        if bind_addr == "::"
        else (socket.AF_INET, "192.0.2.1", "127.0.0.1")
    )
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((probe, 9))
            return str(sock.getsockname()[0])
        except OSError:
            return fallback


def _stored_node_id(data_dir: str) -> str:
    """The node ID kept in data_dir, creating and saving a random one the first time."""
    if not data_dir:
        return str(uuid.uuid4())
    path = os.path.join(data_dir, _NODE_ID_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            stored = f.read().strip()
    except FileNotFoundError:
        fresh = str(uuid.uuid4())
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(fresh)
        except OSError as err:
            raise ConfigError(f"failed to write node ID to {path}: {err.strerror}") from None
        return fresh
    try:
        return node_id(stored)
    except ValueError as err:
        raise ConfigError(f"node ID in {path}: {err}") from None
