from __future__ import annotations

from waypost.sidekick.service_env import env_prefix, instance_address, service_env


def test_kubernetes_variable_forms() -> None:
    assert service_env("web-api", "10.0.0.7", 8080) == {
        "WEB_API_SERVICE_HOST": "10.0.0.7",
        "WEB_API_SERVICE_PORT": "8080",
        "WEB_API_PORT": "tcp://10.0.0.7:8080",
        "WEB_API_PORT_8080_TCP": "tcp://10.0.0.7:8080",
        "WEB_API_PORT_8080_TCP_PROTO": "tcp",
        "WEB_API_PORT_8080_TCP_PORT": "8080",
        "WEB_API_PORT_8080_TCP_ADDR": "10.0.0.7",
    }


def test_ipv6_hosts_are_bracketed_in_urls_only() -> None:
    env = service_env("db", "fd00::1", 5432)
    assert env["DB_SERVICE_HOST"] == "fd00::1"
    assert env["DB_PORT"] == "tcp://[fd00::1]:5432"
    assert env["DB_PORT_5432_TCP_ADDR"] == "fd00::1"


def test_names_become_shell_variable_names() -> None:
    assert env_prefix("redis.cache-2") == "REDIS_CACHE_2"


def test_instance_address_prefers_the_service_address_then_the_node_address() -> None:
    entries = [
        {"Node": {"Address": "10.0.0.1"}, "Service": {"Address": "", "Port": 0}},
        {"Node": {"Address": "10.0.0.2"}, "Service": {"Address": "", "Port": 5432}},
        {"Node": {"Address": "10.0.0.3"}, "Service": {"Address": "10.9.9.9", "Port": 5433}},
    ]
    assert instance_address(entries) == ("10.0.0.2", 5432)
    assert instance_address(entries[2:]) == ("10.9.9.9", 5433)
    assert instance_address([]) is None
    assert instance_address(["junk", {"Service": None}]) is None
