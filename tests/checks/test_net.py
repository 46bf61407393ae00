from __future__ import annotations

import errno
import ssl

import pytest

from waypost.checks._net import describe_error, dial_error, split_host_port, tls_context


@pytest.mark.parametrize(
    ("address", "parsed"),
    [("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:8500", ("::1", 8500)), ("db.local:0", ("db.local", 0))],
)
def test_split_host_port(address: str, parsed: tuple[str, int]) -> None:
    assert split_host_port(address) == parsed


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("localhost", "address localhost: missing port in address"),
        ("::1:80", "address ::1:80: too many colons in address"),
        ("h:http", "address h:http: invalid port"),
    ],
)
def test_split_host_port_errors_in_gos_words(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_host_port(address)


def test_errors_read_like_go() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)")
    assert dial_error("tcp", "127.0.0.1:1", refused) == "dial tcp 127.0.0.1:1: connect: connection refused"
    assert describe_error(TimeoutError()) == "TimeoutError"


def test_tls_contexts_are_shared() -> None:
    assert tls_context(True) is tls_context(True)
    assert tls_context(True).verify_mode == ssl.CERT_NONE
    assert tls_context(False).verify_mode == ssl.CERT_REQUIRED
