"""Value types and per-value checks that the schema attaches to its fields.

Each check takes an already type-correct value and returns it (possibly
normalised) or raises ValueError with a message that the decoder prefixes with
the file and key path, so the wording here is only the "what is wrong" part.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from waypost.api.filter import FilterError, compile_filter
from waypost.tlsutil import GO_CIPHER_SUITES

__all__ = [
    "datacenter_name",
    "encrypt_key",
    "filter_expressions",
    "ip_address",
    "ip_addresses",
    "ip_network",
    "log_level",
    "node_id",
    "non_negative",
    "one_of",
    "port",
    "positive",
    "positive_duration",
    "store_url",
    "tls_cipher_suites",
    "tls_version",
]


def port(value: int) -> int:
    """Consul treats zero and negative ports as "disabled" and stores -1."""
    if value <= 0:
        return -1
    if value > 65535:
        raise ValueError(f"invalid port: {value}")
    return value


def non_negative(value: int) -> int:
    if value < 0:
        raise ValueError(f"cannot be {value}. Must be greater than or equal to zero")
    return value


def positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"cannot be {value}. Must be positive")
    return value


class _Timed(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def seconds(self) -> float: ...


_T = TypeVar("_T", bound=_Timed)


def positive_duration(value: _T) -> _T:
    """For timers that a zero or negative duration would turn into a busy loop."""
    if value.seconds <= 0:
        raise ValueError(f"cannot be {value.text}. Must be positive")
    return value


def _no_template(value: str) -> None:
    if "{{" in value:
        raise ValueError(f"go-sockaddr templates are not supported: {value}")


def _parse_ip(text: str) -> str:
    # Go's net.ParseIP does not accept the bracketed "[::]" that users write.
    bare = "::" if text == "[::]" else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        raise ValueError(f"invalid ip address: {text}") from None


def ip_address(value: str) -> str:
    """One IP address (or empty for "derive it"); bind and advertise take exactly one."""
    if not value:
        return value
    _no_template(value)
    parts = value.split()
    if len(parts) > 1:
        raise ValueError(f"multiple addresses found: {value}")
    return _parse_ip(parts[0])


def ip_addresses(value: str) -> str:
    """A space-separated list of IPs or unix:// sockets, as client_addr and addresses.* allow."""
    _no_template(value)
    for part in value.split():
        if not part.startswith("unix://"):
            _parse_ip(part)
    return value


_DC_NAME = re.compile(r"^[a-z0-9_-]+$")


def datacenter_name(value: str) -> str:
    """Consul lower-cases datacenter names before checking them, so "DC1" is "dc1"."""
    lowered = value.lower()
    if lowered and not _DC_NAME.match(lowered):
        raise ValueError(f'cannot be "{value}". Please use only [a-z0-9-_].')
    return lowered


def node_id(value: str) -> str:
    """Node IDs are UUIDs, compared lower-case by Consul."""
    if not value:
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f'invalid UUID "{value}"') from None


def encrypt_key(value: str) -> str:
    """Gossip keys are base64 AES keys; waypost has no gossip but keeps Consul's check."""
    if not value:
        return value
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as err:
        raise ValueError(f"invalid key: {err}") from None
    if len(raw) not in (16, 24, 32):
        raise ValueError(f"invalid key: key size must be 16, 24 or 32 bytes, got {len(raw)}")
    return value


_LOG_LEVELS = {
    "trace": "trace",
    "debug": "debug",
    "info": "info",
    "warn": "warn",
    "warning": "warn",
    "err": "error",
    "error": "error",
    "off": "off",
}


def log_level(value: str) -> str:
    """Consul accepts any case and a few synonyms; callers get one canonical spelling."""
    try:
        return _LOG_LEVELS[value.lower()]
    except KeyError:
        raise ValueError(f'invalid log level "{value}"') from None


def one_of(*choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            names = ", ".join(f'"{c}"' for c in choices)
            raise ValueError(f'must be one of {names}, got "{value}"')
        return value

    return check


#: Consul's TLS version names; the pre-1.12 spellings ("tls12") are read as the new ones.
_TLS_VERSIONS = {"TLSv1_0": "TLSv1_0", "TLSv1_1": "TLSv1_1", "TLSv1_2": "TLSv1_2", "TLSv1_3": "TLSv1_3"}
_TLS_VERSIONS.update({f"tls1{v[-1]}": v for v in _TLS_VERSIONS})


def tls_version(value: str) -> str:
    try:
        return _TLS_VERSIONS[value]
    except KeyError:
        raise ValueError(
            f'unsupported TLS version "{value}"; use one of TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3'
        ) from None


def tls_cipher_suites(value: str) -> str:
    """A comma-separated list of Go cipher suite names, checked now so that start-up names the bad one."""
    for name in value.split(","):
        if name.strip() and name.strip() not in GO_CIPHER_SUITES:
            raise ValueError(f'unsupported cipher suite "{name.strip()}"')
    return value


_STORE_SCHEMES = ("memory", "sqlite", "etcd", "etcds")


def store_url(value: str) -> str:
    """Catch a mistyped store URL at start-up rather than when the store opens."""
    if not value:
        return value
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in _STORE_SCHEMES:
        raise ValueError(
            f'unsupported store URL "{value}"; use memory://, sqlite:///path, etcd://host:port,... '
            "or etcds://host:port,... (etcd over TLS)"
        )
    if scheme == "sqlite" and not rest.startswith("/"):
        raise ValueError(f'sqlite store needs an absolute path: "{value}"')
    if scheme in ("etcd", "etcds") and not rest:
        raise ValueError(f'etcd store needs at least one endpoint: "{value}"')
    return value


def ip_network(value: str) -> str:
    """A CIDR range; host bits set (``127.240.0.5/12``) are refused rather than guessed at."""
    try:
        ipaddress.ip_network(value)
    except ValueError as err:
        raise ValueError(f'invalid network "{value}": {err}') from None
    return value


def filter_expressions(value: Mapping[str, str]) -> Mapping[str, str]:
    """Each value a filter expression over a service instance, checked now so that
    start-up names the bad one rather than every lookup failing later."""
    for name, expression in value.items():
        if not expression.strip():
            raise ValueError(f'virtual service "{name}" needs a filter expression')
        try:
            compile_filter(expression, ("Service", "ID", "Tags", "Meta", "Port", "Kind"))
        except FilterError as err:
            raise ValueError(f'virtual service "{name}": {err}') from None
    return value
