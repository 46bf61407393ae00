"""The built-in CA provider's configuration: Consul's ``Config`` map, normalised and checked.

The same settings arrive as ``connect { ca_config { leaf_cert_ttl = "72h" } }`` in a file
and as ``{"Config": {"LeafCertTTL": "72h"}}`` over the API, so both spellings map to the
API's; the map is kept as given (plus Consul's defaults), since that is what
``GET /v1/connect/ca/configuration`` echoes. Durations are Go duration strings or
nanoseconds, as Consul's decoder accepts. Checks and their messages are Consul's
(``CommonCAProviderConfig.Validate``), skipped with ``SkipValidate`` as there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from waypost.durations import format_duration, parse_duration

__all__ = [
    "DEFAULT_CONFIG",
    "EC_BITS",
    "PROVIDER",
    "RSA_BITS",
    "CAConfigError",
    "CASettings",
    "normalise",
    "settings",
]

PROVIDER = "consul"
DEFAULT_CONFIG: dict[str, Any] = {
    "LeafCertTTL": "72h",
    "IntermediateCertTTL": "8760h",
    "RootCertTTL": "87600h",
}

_KEYS = {
    "leaf_cert_ttl": "LeafCertTTL", "intermediate_cert_ttl": "IntermediateCertTTL",
    "root_cert_ttl": "RootCertTTL", "private_key": "PrivateKey", "root_cert": "RootCert",
    "private_key_type": "PrivateKeyType", "private_key_bits": "PrivateKeyBits",
    "rotation_period": "RotationPeriod", "csr_max_per_second": "CSRMaxPerSecond",
    "csr_max_concurrent": "CSRMaxConcurrent", "skip_validate": "SkipValidate",
}  # fmt: skip
_HOUR = 3600.0
EC_BITS = (224, 256, 384, 521)
RSA_BITS = (2048, 4096)


class CAConfigError(ValueError):
    """A setting the provider cannot use; the message is Consul's."""


@dataclass(frozen=True, slots=True)
class CASettings:
    leaf_ttl: float
    intermediate_ttl: float
    root_ttl: float
    key_type: str
    key_bits: int
    private_key: str
    root_cert: str


def normalise(raw: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The API's spelling of ``raw`` over Consul's defaults, and the ``cluster_id`` it
    names (a file's ``ca_config`` may set it; the API never shows it)."""
    config = dict(DEFAULT_CONFIG)
    cluster_id = ""
    for key, value in raw.items():
        if key.lower() in ("cluster_id", "clusterid"):
            cluster_id = str(value)
            continue
        config[_KEYS.get(key, key)] = value
    return config, cluster_id


def _duration(config: Mapping[str, Any], key: str) -> float:
    value = config.get(key, DEFAULT_CONFIG.get(key, "0s"))
    if isinstance(value, bool):
        raise CAConfigError(f"error decoding config: {key}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        return value / 1e9
    if not isinstance(value, str):
        raise CAConfigError(f"error decoding config: {key}: expected a duration, got {value!r}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise CAConfigError(f"error decoding config: {key}: {exc}") from None


def _text(config: Mapping[str, Any], key: str, default: str = "") -> str:
    value = config.get(key, default)
    if not isinstance(value, str):
        raise CAConfigError(f"error decoding config: {key}: expected a string, got {value!r}")
    return value


def _bits(config: Mapping[str, Any], key_type: str) -> int:
    value = config.get("PrivateKeyBits", 256 if key_type == "ec" else 2048)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CAConfigError(f"error decoding config: PrivateKeyBits: expected a number, got {value!r}")
    return value


def settings(config: Mapping[str, Any]) -> CASettings:
    """The provider's settings from a normalised ``Config``; raises CAConfigError."""
    key_type = _text(config, "PrivateKeyType", "ec")
    result = CASettings(
        leaf_ttl=_duration(config, "LeafCertTTL"),
        intermediate_ttl=_duration(config, "IntermediateCertTTL"),
        root_ttl=_duration(config, "RootCertTTL"),
        key_type=key_type,
        key_bits=_bits(config, key_type),
        private_key=_text(config, "PrivateKey"),
        root_cert=_text(config, "RootCert"),
    )
    if config.get("SkipValidate") is not True:
        _validate(result)
    elif result.leaf_ttl <= 0:
        raise CAConfigError("leaf cert TTL must be positive")
    return result


def _validate(s: CASettings) -> None:
    if s.leaf_ttl < _HOUR:
        raise CAConfigError(f"leaf cert TTL must be greater or equal than {format_duration(_HOUR)}")
    if s.leaf_ttl > 8760 * _HOUR:
        raise CAConfigError(f"leaf cert TTL must be less than {format_duration(8760 * _HOUR)}")
    if s.intermediate_ttl < 3 * _HOUR:
        raise CAConfigError("Intermediate Cert TTL must be greater or equal than 3h")
    if s.intermediate_ttl < 3 * s.leaf_ttl:
        raise CAConfigError(
            "Intermediate Cert TTL must be greater or equal than 3 * LeafCertTTL "
            f"(>={format_duration(3 * s.leaf_ttl)})."
        )
    if s.root_ttl < s.intermediate_ttl:
        raise CAConfigError(
            "root cert TTL is set and is not greater than intermediate cert ttl. "
            f"root cert ttl: {format_duration(s.root_ttl)}, "
            f"intermediate cert ttl: {format_duration(s.intermediate_ttl)}"
        )
    if s.key_type == "ec":
        if s.key_bits not in EC_BITS:
            raise CAConfigError("EC key length must be one of (224, 256, 384, 521) bits")
    elif s.key_type == "rsa":
        if s.key_bits not in RSA_BITS:
            raise CAConfigError("RSA key length must be 2048 or 4096 bits")
    else:
        raise CAConfigError(f"unknown key type {s.key_type}")
