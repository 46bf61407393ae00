"""The agent's configuration: ``consul agent`` flags, JSON/HCL config files and their defaults.

``load_config(argv)`` turns the arguments after ``agent`` into a frozen
``AgentConfig``; ``reload_config(cfg)`` reads the same sources again; ``check_config(paths)``
is ``validate``'s check of files alone.
"""

from waypost.config.builder import check_config, load_config, reload_config
from waypost.config.errors import ConfigError, FlagError
from waypost.config.model import (
    ACL,
    ACLTokens,
    Addresses,
    AgentConfig,
    Connect,
    DNSConfig,
    Duration,
    HTTPConfig,
    Limits,
    Liveness,
    Performance,
    Ports,
    SOAConfig,
    TLSConfig,
    TLSInternalRPC,
    TLSProtocol,
    UIConfig,
)

__all__ = [
    "ACL",
    "ACLTokens",
    "Addresses",
    "AgentConfig",
    "ConfigError",
    "Connect",
    "DNSConfig",
    "Duration",
    "FlagError",
    "HTTPConfig",
    "Limits",
    "Liveness",
    "Performance",
    "Ports",
    "SOAConfig",
    "TLSConfig",
    "TLSInternalRPC",
    "TLSProtocol",
    "UIConfig",
    "check_config",
    "load_config",
    "reload_config",
]
