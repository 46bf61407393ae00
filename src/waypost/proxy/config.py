"""The proxy's configuration: ``proxy { listener { ... } }`` in an HCL or JSON file.

Everything is checked before a socket is opened, so a typo never becomes a half-started
proxy: a file that does not parse is a ``ConfigError`` with its name and line (from the
HCL or JSON parser), and a bad setting names the file, the line of its listener and the
setting. Listeners may also come from a registration's ``Meta.proxy_port`` or from the
virtual IPs (``vip_listeners``) at run time; ``meta_listener`` and ``vip_listener`` build
those with the same defaults.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from waypost.config.errors import ConfigError
from waypost.config.sources import parse_text
from waypost.durations import parse_duration

__all__ = [
    "BALANCE_MODES",
    "ConfigError",
    "ListenerConfig",
    "OutlierConfig",
    "ProxyConfig",
    "load_file",
    "meta_listener",
    "parse_config",
    "split_hostport",
    "vip_listener",
]

BALANCE_MODES = ("round_robin", "least_conn", "random_two", "weighted")
PROTOCOLS = ("tcp", "udp")
META_PORT_KEY = "proxy_port"


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """One listening socket and the upstreams it balances over.

    ``tags`` and ``filter`` select instances exactly as ``/v1/health/service``'s ``tag``
    and ``filter`` parameters do (the agent evaluates them); listeners with the same
    service and selectors share one blocking query.
    """

    service: str
    host: str
    port: int
    protocol: str = "tcp"
    tags: tuple[str, ...] = ()
    filter: str = ""
    balance: str = "round_robin"
    datacenter: str = ""
    connect_timeout: float = 2.0
    drain_timeout: float = 30.0
    idle_timeout: float = 0.0
    from_meta: bool = False
    virtual: bool = False
    """A virtual IP's listener: its upstreams are the instances behind the name ``service``."""

    @property
    def bind(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def name(self) -> str:
        """How logs and errors name the listener."""
        return f"{self.protocol} listener {self.bind} for service {self.service!r}"


@dataclass(frozen=True, slots=True)
class OutlierConfig:
    """Passive ejection: ``consecutive_failures`` failed connects eject an instance for ``ejection``."""

    consecutive_failures: int = 3
    ejection: float = 30.0


@dataclass(slots=True)
class ProxyConfig:
    listeners: list[ListenerConfig] = field(default_factory=list)
    outlier: OutlierConfig = field(default_factory=OutlierConfig)
    meta_listeners: bool = True
    meta_bind: str = "127.0.0.1"
    vip_listeners: bool = False
    status_addr: str = ""
    defaults: ListenerConfig = field(default_factory=lambda: ListenerConfig("", "127.0.0.1", 0))


def split_hostport(text: str, setting: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` with a literal IP, as the agent's bind settings."""
    host, sep, port_text = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"{setting}: expected ip:port, got {text!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{setting}: {host!r} is not an IP address") from None
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"{setting}: port {port} out of range")
    return host, port


def _string(raw: Any, setting: str) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{setting}: expected a string, got {raw!r}")
    return raw


def _bool(raw: Any, setting: str) -> bool:
    if isinstance(raw, bool):
        return raw
    raise ConfigError(f"{setting}: expected a boolean, got {raw!r}")


def _duration(raw: Any, setting: str) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
        return float(raw)
    try:
        return parse_duration(_string(raw, setting))
    except ValueError as err:
        raise ConfigError(f"{setting}: {err}") from None


def _blocks(raw: Any, setting: str) -> list[dict[str, Any]]:
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"{setting}: expected a block")
    return items


def _choice(raw: Any, setting: str, choices: tuple[str, ...]) -> str:
    value = _string(raw, setting)
    if value not in choices:
        raise ConfigError(f"{setting}: must be one of {', '.join(choices)}, got {value!r}")
    return value


_LISTENER_KEYS = {
    "service", "bind", "protocol", "tags", "filter", "balance", "datacenter", "connect_timeout",
    "drain_timeout", "idle_timeout",
}  # fmt: skip
_PROXY_KEYS = {
    "listener",
    "outlier",
    "meta_listeners",
    "meta_bind",
    "vip_listeners",
    "status_addr",
    *_LISTENER_KEYS - {"service", "bind"},
}


def _settings(base: ListenerConfig, raw: dict[str, Any], where: str) -> ListenerConfig:
    """``base`` with the per-listener settings of ``raw`` applied (the proxy block's are defaults)."""
    out = base
    if "protocol" in raw:
        out = replace(out, protocol=_choice(raw["protocol"], f"{where}.protocol", PROTOCOLS))
    if "balance" in raw:
        out = replace(out, balance=_choice(raw["balance"], f"{where}.balance", BALANCE_MODES))
    if "tags" in raw:
        tags = raw["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise ConfigError(f"{where}.tags: expected a list of non-empty strings, got {tags!r}")
        out = replace(out, tags=tuple(tags))
    if "filter" in raw:
        out = replace(out, filter=_string(raw["filter"], f"{where}.filter").strip())
    if "datacenter" in raw:
        out = replace(out, datacenter=_string(raw["datacenter"], f"{where}.datacenter"))
    if "connect_timeout" in raw:
        out = replace(out, connect_timeout=_duration(raw["connect_timeout"], f"{where}.connect_timeout"))
    if "drain_timeout" in raw:
        out = replace(out, drain_timeout=_duration(raw["drain_timeout"], f"{where}.drain_timeout"))
    if "idle_timeout" in raw:
        out = replace(out, idle_timeout=_duration(raw["idle_timeout"], f"{where}.idle_timeout"))
    if out.connect_timeout <= 0:
        raise ConfigError(f"{where}.connect_timeout: must be positive")
    return out


def _line_of(text: str, key: str, value: str, occurrence: int) -> int:
    """The line of the ``occurrence``-th ``key = "value"`` (HCL) or ``"key": "value"`` (JSON)."""
    pattern = re.compile(rf'"?\b{re.escape(key)}"?\s*[=:]\s*{re.escape(json.dumps(value))}')
    for n, match in enumerate(pattern.finditer(text)):
        if n == occurrence:
            return text.count("\n", 0, match.start()) + 1
    return 0


def _listener(defaults: ListenerConfig, raw: dict[str, Any], where: str) -> ListenerConfig:
    unknown = sorted(set(raw) - _LISTENER_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unsupported setting {unknown[0]!r}")
    for key in ("service", "bind"):
        if key not in raw:
            raise ConfigError(f"{where}: missing {key}")
    service = _string(raw["service"], f"{where}.service").strip()
    if not service:
        raise ConfigError(f"{where}.service: cannot be empty")
    host, port = split_hostport(_string(raw["bind"], f"{where}.bind"), f"{where}.bind")
    return _settings(replace(defaults, service=service, host=host, port=port), raw, where)


def parse_config(path: str, text: str) -> ProxyConfig:
    """The configuration in ``text`` (HCL, or JSON when ``path`` ends in ``.json``)."""
    raw = parse_text(path, text, "json" if path.endswith(".json") else "hcl")
    unknown = sorted(set(raw) - {"proxy"})
    if unknown:
        raise ConfigError(f"unsupported setting {unknown[0]!r}", path)
    config = ProxyConfig()
    blocks = _blocks(raw.get("proxy", {}), "proxy") if "proxy" in raw else []
    seen: dict[str, int] = {}
    for block in blocks:
        unknown = sorted(set(block) - _PROXY_KEYS)
        if unknown:
            raise ConfigError(f"proxy: unsupported setting {unknown[0]!r}", path)
        try:
            config.defaults = _settings(config.defaults, block, "proxy")
            if "outlier" in block:
                config.outlier = _outlier(_blocks(block["outlier"], "proxy.outlier")[-1], config.outlier)
            if "meta_listeners" in block:
                config.meta_listeners = _bool(block["meta_listeners"], "proxy.meta_listeners")
            if "vip_listeners" in block:
                config.vip_listeners = _bool(block["vip_listeners"], "proxy.vip_listeners")
            if "meta_bind" in block:
                config.meta_bind, _ = split_hostport(_string(block["meta_bind"], "proxy.meta_bind") + ":0",
                                                     "proxy.meta_bind")  # fmt: skip
            if "status_addr" in block:
                config.status_addr = _string(block["status_addr"], "proxy.status_addr")
                split_hostport(config.status_addr, "proxy.status_addr")
        except ConfigError as err:
            raise ConfigError(str(err), path) from None
        for item in _blocks(block.get("listener", []), "proxy.listener") if "listener" in block else []:
            service = item.get("service")
            n = seen.get(str(service), 0)
            seen[str(service)] = n + 1
            try:
                config.listeners.append(_listener(config.defaults, item, "listener"))
            except ConfigError as err:
                line = _line_of(text, "service", service, n) if isinstance(service, str) else 0
                raise ConfigError(f"line {line}: {err}" if line else str(err), path) from None
    _check_binds(config.listeners, path)
    return config


def _outlier(raw: dict[str, Any], base: OutlierConfig) -> OutlierConfig:
    unknown = sorted(set(raw) - {"consecutive_failures", "ejection"})
    if unknown:
        raise ConfigError(f"proxy.outlier: unsupported setting {unknown[0]!r}")
    out = base
    if "consecutive_failures" in raw:
        count = raw["consecutive_failures"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError(
                f"proxy.outlier.consecutive_failures: expected a positive integer, got {count!r}"
            )
        out = replace(out, consecutive_failures=count)
    if "ejection" in raw:
        out = replace(out, ejection=_duration(raw["ejection"], "proxy.outlier.ejection"))
    return out


def _check_binds(listeners: list[ListenerConfig], path: str) -> None:
    taken: dict[tuple[str, str, int], ListenerConfig] = {}
    for item in listeners:
        key = (item.protocol, item.host, item.port)
        if item.port and key in taken:
            raise ConfigError(f"{item.name}: {item.bind} is already the bind of {taken[key].name}", path)
        taken[key] = item


def load_file(path: str) -> ProxyConfig:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise ConfigError(f"config: {path}: {err.strerror}") from None
    return parse_config(path, text)


def meta_listener(config: ProxyConfig, service: str, port: int) -> ListenerConfig:
    """The listener a registration's ``Meta.proxy_port`` asks for, with the proxy's defaults."""
    return replace(config.defaults, service=service, host=config.meta_bind, port=port, from_meta=True)


def vip_listener(config: ProxyConfig, name: str, address: str, port: int) -> ListenerConfig:
    """The listener on a virtual IP's port, with the proxy's defaults."""
    return replace(config.defaults, service=name, host=address, port=port, virtual=True)
