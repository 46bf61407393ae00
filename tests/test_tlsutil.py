"""SSL contexts from TLS settings: every Go cipher suite name maps to one OpenSSL accepts,
versions apply, and unusable files are errors naming the setting."""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path
from typing import Any

import pytest

from tls_certs import Certs, make_certs
from waypost.config import TLSProtocol
from waypost.tlsutil import (
    GO_CIPHER_SUITES,
    ClientTLS,
    TLSSetupError,
    client_context,
    env_flag,
    grpc_credentials,
    outgoing_context,
    server_context,
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def settings(certs: Certs, **changes: Any) -> TLSProtocol:
    cert, key = certs.pair("server")
    return dataclasses.replace(
        TLSProtocol(ca_file=str(certs.ca), cert_file=str(cert), key_file=str(key)), **changes
    )


@pytest.mark.parametrize("name", sorted(GO_CIPHER_SUITES))
def test_every_go_cipher_suite_is_one_openssl_knows(certs: Certs, name: str) -> None:
    ctx = server_context(settings(certs, tls_cipher_suites=name), "tls.https")
    assert GO_CIPHER_SUITES[name] in {c["name"] for c in ctx.get_ciphers()}


def test_versions_and_verify_modes(certs: Certs) -> None:
    ctx = server_context(settings(certs, tls_min_version="TLSv1_3", verify_incoming=True), "tls.https")
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_3
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert server_context(settings(certs), "tls.https").verify_mode is ssl.CERT_NONE
    checked = outgoing_context(settings(certs), "tls.internal_rpc", check_hostname=True)
    assert checked.check_hostname
    assert checked.verify_mode is ssl.CERT_REQUIRED
    assert not outgoing_context(settings(certs), "tls.internal_rpc", check_hostname=False).check_hostname


def test_ca_path_reads_every_file_in_the_directory(certs: Certs, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(certs.ca.read_bytes())
    ctx = server_context(
        settings(certs, ca_file="", ca_path=str(tmp_path), verify_incoming=True), "tls.https"
    )
    assert len(ctx.get_ca_certs()) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cert_file": "/nonexistent.pem"}, "tls.https: failed to load cert/key pair /nonexistent.pem"),
        ({"key_file": ""}, "tls.https: cert_file and key_file must both be set to serve TLS"),
        ({"ca_file": "/nonexistent-ca.pem"}, "tls.https: failed to load CA /nonexistent-ca.pem"),
        ({"ca_file": "", "verify_incoming": True}, "tls.https: verify_incoming set but no CA certificates"),
        ({"ca_file": "", "ca_path": "/nonexistent"}, "tls.https: ca_path /nonexistent is not a directory"),
    ],
)
def test_unusable_settings_name_the_setting(certs: Certs, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(TLSSetupError) as err:
        server_context(settings(certs, **changes), "tls.https")
    assert str(err.value).startswith(message)


def test_client_context_and_grpc_credentials(certs: Certs) -> None:
    cert, key = certs.pair("cli")
    ctx = client_context(ca_file=str(certs.ca), cert_file=str(cert), key_file=str(key))
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert client_context(verify=False).verify_mode is ssl.CERT_NONE
    with pytest.raises(TLSSetupError, match="client certificate: failed to load cert/key pair"):
        client_context(cert_file="/nonexistent.pem")
    assert grpc_credentials(settings(certs), "tls.store") is not None
    with pytest.raises(TLSSetupError, match=r"tls\.store: cert_file and key_file must both be set"):
        grpc_credentials(settings(certs, key_file=""), "tls.store")
    with pytest.raises(TLSSetupError, match=r"tls\.store: ca_file /nonexistent"):
        grpc_credentials(settings(certs, ca_file="/nonexistent"), "tls.store")


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [("1", False, True), ("T", False, True), ("false", True, False), ("0", True, False),
     ("yes", False, False), ("no", True, True), ("", True, True)],
)  # fmt: skip
def test_env_switches_read_as_go_parses_booleans(
    monkeypatch: pytest.MonkeyPatch, value: str, default: bool, expected: bool
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_SSL_VERIFY", value)
    assert env_flag("CONSUL_HTTP_SSL_VERIFY", default) is expected
    assert ClientTLS.from_flags({}).verify is env_flag("CONSUL_HTTP_SSL_VERIFY", True)
