"""Join addresses for WAN federation: a server's HTTP API, host[:port] or a full URL."""

from __future__ import annotations

import re

import pytest

from waypost.wan.federation import wan_url


@pytest.mark.parametrize(
    ("address", "scheme", "url"),
    [
        ("10.0.0.1", "http", "http://10.0.0.1:8500"),
        ("10.0.0.1:9500", "http", "http://10.0.0.1:9500"),
        ("10.0.0.1:8501", "https", "https://10.0.0.1:8501"),
        ("https://h.example:8501", "http", "https://h.example:8501"),
        ("[::1]:8500", "http", "http://[::1]:8500"),
    ],
)
def test_join_addresses_become_base_urls(address: str, scheme: str, url: str) -> None:
    assert wan_url(address, scheme) == url


@pytest.mark.parametrize(
    ("address", "why"),
    [("10.0.0.1:port", "the port is not a number"), ("ftp://h:1", "expected host[:port]"),
     ("http://h:1/v1", "expected host[:port]"), ("", "expected host[:port]")],
)  # fmt: skip
def test_a_malformed_join_address_says_what_is_wrong(address: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        wan_url(address)
