"""SSL contexts from Consul's TLS settings, for listeners and outgoing connections alike.

Built on the stdlib ssl module; the agent, the CLI, ``waypost.client`` and the stores
share these so that a setting means the same everywhere. A listener's context is
changed in place on reload (``configure_server``): an asyncio server keeps the context
it was created with, and OpenSSL applies the context's current certificate, CAs and
verify mode to each new connection, so new connections get the new certificate while
established ones keep theirs. Problems are ``TLSSetupError`` naming the setting and
file, never an ssl traceback.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from waypost.gostrconv import GO_BOOLS

if TYPE_CHECKING:
    import grpc

    from waypost.config.model import TLSProtocol

__all__ = [
    "GO_CIPHER_SUITES",
    "ClientTLS",
    "TLSSetupError",
    "client_context",
    "configure_client",
    "configure_server",
    "env_flag",
    "grpc_credentials",
    "outgoing_context",
    "server_context",
]

#: Go's names for the TLS 1.2 cipher suites Consul accepts -> OpenSSL's names for them.
GO_CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
}

_VERSIONS = {
    "TLSv1_0": ssl.TLSVersion.TLSv1,
    "TLSv1_1": ssl.TLSVersion.TLSv1_1,
    "TLSv1_2": ssl.TLSVersion.TLSv1_2,
    "TLSv1_3": ssl.TLSVersion.TLSv1_3,
}


class TLSSetupError(ValueError):
    """A certificate, key or CA that cannot be used; ``str`` names the setting and the file."""


def server_context(settings: TLSProtocol, section: str) -> ssl.SSLContext:
    """A listener's context; ``section`` (``tls.https``...) prefixes any error."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    configure_server(ctx, settings, section)
    return ctx


def configure_server(ctx: ssl.SSLContext, settings: TLSProtocol, section: str) -> None:
    """Apply ``settings`` to a listener's context, on start and again on reload.

    A reload can add CAs but not drop one: OpenSSL's store only grows.
    """
    if settings.verify_incoming and not (settings.ca_file or settings.ca_path):
        raise TLSSetupError(f"{section}: verify_incoming set but no CA certificates were provided")
    _protocol(ctx, settings, section)
    if not settings.cert_file or not settings.key_file:
        raise TLSSetupError(f"{section}: cert_file and key_file must both be set to serve TLS")
    _load_pair(ctx, settings.cert_file, settings.key_file, section)
    _load_ca(ctx, settings.ca_file, settings.ca_path, section)
    ctx.verify_mode = ssl.CERT_REQUIRED if settings.verify_incoming else ssl.CERT_NONE


def outgoing_context(settings: TLSProtocol, section: str, *, check_hostname: bool) -> ssl.SSLContext:
    """An agent's context towards a TLS listener: the CA verifies the peer and the
    certificate pair, if any, answers its ``verify_incoming``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    configure_client(ctx, settings, section, check_hostname=check_hostname)
    return ctx


def configure_client(
    ctx: ssl.SSLContext, settings: TLSProtocol, section: str, *, check_hostname: bool
) -> None:
    _protocol(ctx, settings, section)
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if settings.ca_file or settings.ca_path:
        _load_ca(ctx, settings.ca_file, settings.ca_path, section)
    else:
        ctx.load_default_certs()
    if settings.cert_file or settings.key_file:
        _load_pair(ctx, settings.cert_file, settings.key_file, section)


def client_context(
    *, ca_file: str = "", ca_path: str = "", cert_file: str = "", key_file: str = "", verify: bool = True
) -> ssl.SSLContext:
    """The HTTP API clients' context, from the consul CLI's flags and environment."""
    ctx = ssl.create_default_context()
    if ca_file or ca_path:
        _load_ca(ctx, ca_file, ca_path, "CA")
    if cert_file or key_file:
        _load_pair(ctx, cert_file, key_file or cert_file, "client certificate")
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def env_flag(name: str, default: bool) -> bool:
    """An environment switch (``CONSUL_HTTP_SSL``, ``CONSUL_HTTP_SSL_VERIFY``) read as the
    consul CLI reads it, with Go's ``strconv.ParseBool``: unset or unreadable keeps the default."""
    return GO_BOOLS.get(os.environ.get(name, ""), default)


@dataclass(frozen=True)
class ClientTLS:
    """An HTTP API client's TLS settings: the consul CLI's flags, each falling back to its
    environment variable; the CLI and ``waypost.client`` share it so both read them alike."""

    ca_file: str = ""
    ca_path: str = ""
    client_cert: str = ""
    client_key: str = ""
    server_name: str = ""
    verify: bool = True

    @classmethod
    def from_flags(cls, values: Mapping[str, object]) -> ClientTLS:
        def pick(flag: str, env: str) -> str:
            return str(values.get(flag) or "") or os.environ.get(env, "")

        return cls(
            ca_file=pick("ca-file", "CONSUL_CACERT"),
            ca_path=pick("ca-path", "CONSUL_CAPATH"),
            client_cert=pick("client-cert", "CONSUL_CLIENT_CERT"),
            client_key=pick("client-key", "CONSUL_CLIENT_KEY"),
            server_name=pick("tls-server-name", "CONSUL_TLS_SERVER_NAME"),
            verify=env_flag("CONSUL_HTTP_SSL_VERIFY", True),
        )

    def context(self) -> ssl.SSLContext:
        return client_context(
            ca_file=self.ca_file,
            ca_path=self.ca_path,
            cert_file=self.client_cert,
            key_file=self.client_key,
            verify=self.verify,
        )


def grpc_credentials(settings: TLSProtocol, section: str) -> grpc.ChannelCredentials:
    """gRPC's TLS credentials (for etcd): the CA that signed the members' certificates and
    the pair sent to a member started with ``--client-cert-auth``."""
    import grpc

    roots = _read(settings.ca_file, section, "ca_file") if settings.ca_file else None
    if settings.ca_path:
        bundle = b"".join(_read(str(p), section, "ca_path") for p in sorted(Path(settings.ca_path).iterdir()))
        roots = (roots or b"") + bundle
    key = _read(settings.key_file, section, "key_file") if settings.key_file else None
    chain = _read(settings.cert_file, section, "cert_file") if settings.cert_file else None
    if (key is None) != (chain is None):
        raise TLSSetupError(f"{section}: cert_file and key_file must both be set")
    return grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=chain)


def _protocol(ctx: ssl.SSLContext, settings: TLSProtocol, section: str) -> None:
    ctx.minimum_version = _VERSIONS[settings.tls_min_version]
    names = [GO_CIPHER_SUITES[n.strip()] for n in settings.tls_cipher_suites.split(",") if n.strip()]
    if names:
        try:
            ctx.set_ciphers(":".join(names))
        except ssl.SSLError as err:
            raise TLSSetupError(f"{section}: tls_cipher_suites: {err.reason or err}") from None


def _load_pair(ctx: ssl.SSLContext, cert_file: str, key_file: str, section: str) -> None:
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except OSError as err:
        # SSLError is an OSError too; both say which file through the wrapper below.
        reason = getattr(err, "reason", None) or err.strerror or str(err)
        raise TLSSetupError(
            f"{section}: failed to load cert/key pair {cert_file}, {key_file}: {reason}"
        ) from None


def _load_ca(ctx: ssl.SSLContext, ca_file: str, ca_path: str, section: str) -> None:
    """The CA file and every PEM file in ``ca_path``, as Consul reads that directory
    (OpenSSL's own capath would want hash-named links)."""
    if ca_path and not os.path.isdir(ca_path):
        raise TLSSetupError(f"{section}: ca_path {ca_path} is not a directory")
    files = [ca_file] if ca_file else []
    files += [str(p) for p in sorted(Path(ca_path).iterdir()) if p.is_file()] if ca_path else []
    for path in files:
        try:
            ctx.load_verify_locations(cafile=path)
        except OSError as err:
            reason = getattr(err, "reason", None) or err.strerror or str(err)
            raise TLSSetupError(f"{section}: failed to load CA {path}: {reason}") from None


def _read(path: str, section: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise TLSSetupError(f"{section}: {key} {path}: {err.strerror}") from None
