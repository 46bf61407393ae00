"""The client agent's store: join addresses, and what it answers before it knows a server.
(Reaching servers through their agent-to-server port: tests/agent and tests/e2e.)"""

from __future__ import annotations

import socket

import pytest

from waypost.store.base import StoreError
from waypost.store.remote import RemoteStore, probe, server_address


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("10.0.0.5", "10.0.0.5:8300"),
        ("10.0.0.5:18300", "10.0.0.5:18300"),
        (" server-1.example ", "server-1.example:8300"),
        ("::1", "[::1]:8300"),
        ("[::1]", "[::1]:8300"),
        ("[fe80::1]:9000", "[fe80::1]:9000"),
    ],
)
def test_join_addresses_default_to_the_server_port(given: str, expected: str) -> None:
    assert server_address(given) == expected


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("", "missing or malformed host"),
        (":8300", "missing or malformed host"),
        ("http://10.0.0.5", "port must be a number"),
        ("10.0.0.5:0", "port must be a number from 1 to 65535"),
        ("10.0.0.5:65536", "port must be a number from 1 to 65535"),
        ("10.0.0.5:http", "port must be a number"),
        ("[::1", "expected host[:port]"),
        ("[::1]x", "expected host[:port]"),
        ("a:b:c", "expected host[:port]"),
        ("host/path:1", "missing or malformed host"),
    ],
)
def test_malformed_join_addresses_are_refused_with_the_reason(given: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="invalid address") as refused:
        server_address(given)
    assert complaint in str(refused.value)


async def test_without_servers_every_call_answers_no_known_servers() -> None:
    store = RemoteStore()
    try:
        with pytest.raises(StoreError, match=r"^No known Consul servers$"):
            await store.revision()
        store.add_server("127.0.0.1")
        store.add_server("127.0.0.1:8300")
        assert store.servers == ["127.0.0.1:8300"]
    finally:
        await store.close()


async def test_probe_names_the_address_and_the_reason() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError) as refused:
        await probe(f"127.0.0.1:{port}")
    assert str(refused.value) == (
        f"Failed to join 127.0.0.1:{port}: dial tcp 127.0.0.1:{port}: connect: connection refused"
    )
