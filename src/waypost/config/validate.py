"""Checks that involve several settings, run once every source is merged.

The messages are Consul's (``agent/config/builder.go``, ``Validate``), since
operators search for them; being about the merged result they name no file.
"""

from __future__ import annotations

import ipaddress
import os

from waypost.config.errors import ConfigError
from waypost.config.model import AgentConfig
from waypost.connect.ca_config import CAConfigError, normalise, settings

__all__ = ["validate"]

_MAX_RAFT_MULTIPLIER = 10


def _is_any(address: str) -> bool:
    return bool(address) and ipaddress.ip_address(address).is_unspecified


def _recursor_is_any(recursor: str) -> bool:
    """Recursors are "ip", "ip:port" or "[ipv6]:port"; anything else is a name, never "any"."""
    for candidate in (recursor, recursor.rpartition(":")[0]):
        try:
            return ipaddress.ip_address(candidate.strip("[]")).is_unspecified
        except ValueError:
            continue
    return False


def validate(cfg: AgentConfig) -> None:
    if cfg.connect.enabled:
        try:
            settings(normalise(cfg.connect.ca_config)[0])
        except CAConfigError as exc:
            raise ConfigError(f"connect.ca_config: {exc}") from None
    if not cfg.dev:
        if not cfg.data_dir:
            raise ConfigError("data_dir cannot be empty")
        if os.path.exists(cfg.data_dir) and not os.path.isdir(cfg.data_dir):
            raise ConfigError(f'data_dir "{cfg.data_dir}" is not a directory')
    if not cfg.node_name:
        raise ConfigError("node_name cannot be empty")
    if _is_any(cfg.advertise_addr):
        raise ConfigError("Advertise address cannot be 0.0.0.0, :: or [::]")
    if _is_any(cfg.advertise_addr_wan):
        raise ConfigError("Advertise WAN address cannot be 0.0.0.0, :: or [::]")
    if any(_recursor_is_any(r) for r in cfg.recursors):
        raise ConfigError("DNS recursor address cannot be 0.0.0.0, :: or [::]")
    reserved = ("service", "connect", "node", "query", "addr", cfg.datacenter)
    if cfg.alt_domain and cfg.alt_domain.split(".", 1)[0] in reserved:
        raise ConfigError(
            f"alt_domain cannot start with {{service,connect,node,query,addr,{cfg.datacenter}}}"
        )
    if cfg.bootstrap and not cfg.server:
        raise ConfigError("'bootstrap = true' requires 'server = true'")
    if cfg.bootstrap_expect > 0:
        if not cfg.server:
            raise ConfigError("'bootstrap_expect > 0' requires 'server = true'")
        if cfg.dev:
            raise ConfigError("'bootstrap_expect > 0' not allowed in dev mode")
        if cfg.bootstrap:
            raise ConfigError("'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive")
    multiplier = cfg.performance.raft_multiplier
    if multiplier > _MAX_RAFT_MULTIPLIER:
        raise ConfigError(
            f"performance.raft_multiplier cannot be {multiplier}. "
            f"Must be between 1 and {_MAX_RAFT_MULTIPLIER}"
        )
