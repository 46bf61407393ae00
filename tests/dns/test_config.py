"""Consul's dns_config keys, defaults and spellings."""

from __future__ import annotations

import pytest

from waypost.dns.config import DnsConfig, SoaConfig, parse_recursor


def test_defaults_match_consul() -> None:
    config = DnsConfig()
    assert (config.domain, config.alt_domain, config.recursors) == ("consul.", "", ())
    assert (config.udp_answer_limit, config.a_record_limit, config.enable_truncate) == (3, 0, False)
    assert (config.only_passing, config.allow_stale, config.node_ttl) == (False, True, 0.0)
    assert (config.recursor_timeout, config.recursor_strategy) == (2.0, "sequential")
    assert config.soa == SoaConfig(3600, 600, 86400, 0)
    assert config.enable_additional_node_meta_txt is True


def test_from_agent_config_with_nested_dns_config() -> None:
    config = DnsConfig.from_mapping(
        {
            "domain": "Example.COM",
            "alt_domain": "alt.test.",
            "recursors": ["8.8.8.8", "127.0.0.1:5353", "[::1]:54", "2001:db8::1"],
            "datacenter": "ignored",
            "dns_config": {
                "node_ttl": "10s",
                "service_ttl": {"*": "5s", "web": 30},
                "max_stale": "1h",
                "recursor_timeout": "500ms",
                "recursor_strategy": "random",
                "soa": {"min_ttl": 7},
                "udp_answer_limit": "5",
                "only_passing": True,
                "use_cache": True,
            },
        }
    )
    assert (config.domain, config.alt_domain) == ("example.com.", "alt.test.")
    assert config.recursors == (("8.8.8.8", 53), ("127.0.0.1", 5353), ("::1", 54), ("2001:db8::1", 53))
    assert (config.node_ttl, config.max_stale, config.recursor_timeout) == (10.0, 3600.0, 0.5)
    assert config.service_ttl == {"*": 5.0, "web": 30.0}
    assert config.soa == SoaConfig(min_ttl=7)
    assert (config.udp_answer_limit, config.only_passing, config.recursor_strategy) == (5, True, "random")


def test_from_bare_dns_config_block_ignores_nulls() -> None:
    config = DnsConfig.from_mapping({"enable_truncate": True, "a_record_limit": None})
    assert config.enable_truncate is True
    assert config.a_record_limit == 0


def test_rejects_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="recursor_strategy"):
        DnsConfig.from_mapping({"recursor_strategy": "fastest"})


@pytest.mark.parametrize(
    ("ttls", "service", "want"),
    [
        ({}, "web", 0),
        ({"*": 5}, "web", 5),
        ({"*": 5, "w*": 7}, "web", 7),
        ({"*": 5, "w*": 7, "we*": 8, "web": 9}, "web", 9),
        ({"w*": 7}, "db", 0),
        ({"web": 1.9}, "web", 1),
    ],
)
def test_service_ttl(ttls: dict[str, float], service: str, want: int) -> None:
    assert DnsConfig(service_ttl=ttls).service_ttl_for(service) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [("dns.example", ("dns.example", 53)), ("dns.example:54", ("dns.example", 54)), ("[::1]", ("::1", 53))],
)
def test_recursor_address(text: str, want: tuple[str, int]) -> None:
    assert parse_recursor(text) == want


@pytest.mark.parametrize("bad", ["1.2.3.4:0", "1.2.3.4:x", "[::1", "[nope]:53", "::zz", ":53"])
def test_recursor_address_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match=r"recursor|expected|permitted|invalid literal"):
        parse_recursor(bad)
