from __future__ import annotations

from typing import Any

import pytest

from waypost.checks.definition import CheckDefinition, CheckDefinitionError, parse_check_definition


def test_pascal_case_http_body_as_the_api_sends_it() -> None:
    d = parse_check_definition(
        {
            "ID": "api",
            "Name": "API health",
            "ServiceID": "web-1",
            "HTTP": "https://127.0.0.1:8443/health",
            "Method": "POST",
            "Header": {"X-Token": ["a", "b"]},
            "Body": "{}",
            "TLSSkipVerify": True,
            "TLSServerName": "web.local",
            "DisableRedirects": True,
            "Interval": "10s",
            "Timeout": "1s",
            "SuccessBeforePassing": 2,
            "FailuresBeforeWarning": 1,
            "FailuresBeforeCritical": 3,
            "DeregisterCriticalServiceAfter": "90m",
            "OutputMaxSize": 1024,
        }
    )
    assert d.check_id == "api"
    assert d.kind == "http"
    assert d.header == {"X-Token": ("a", "b")}
    assert (d.interval, d.timeout, d.deregister_critical_service_after) == (10.0, 1.0, 5400.0)
    assert (d.success_before_passing, d.failures_before_warning, d.failures_before_critical) == (2, 1, 3)
    assert d.tls_skip_verify
    assert d.disable_redirects
    assert d.tls_server_name == "web.local"


def test_snake_case_config_file_keys() -> None:
    d = parse_check_definition(
        {
            "id": "db",
            "tcp": "127.0.0.1:5432",
            "interval": "5s",
            "deregister_critical_service_after": "1m",
            "tls_skip_verify": True,
            "tcp_use_tls": True,
            "service_id": "db-1",
            "failures_before_critical": 2,
        }
    )
    assert (d.check_id, d.kind, d.interval) == ("db", "tcp", 5.0)
    assert d.deregister_critical_service_after == 60.0
    assert d.tcp_use_tls
    assert d.tls_skip_verify
    assert (d.service_id, d.failures_before_critical) == ("db-1", 2)


def test_py_consul_style_mixture_and_nanosecond_durations() -> None:
    d = parse_check_definition({"CheckID": "x", "script_args": ["/bin/true"], "Interval": 2_000_000_000})
    assert (d.check_id, d.kind, d.args, d.interval) == ("x", "script", ("/bin/true",), 2.0)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"TTL": "30s"}, "ttl"),
        ({"UDP": "127.0.0.1:53", "Interval": "10s"}, "udp"),
        ({"GRPC": "127.0.0.1:9000/svc", "Interval": "10s", "GRPCUseTLS": True}, "grpc"),
        ({"H2PING": "127.0.0.1:8443", "Interval": "10s"}, "h2ping"),
        ({"Args": ["check"], "DockerContainerID": "c1", "Shell": "/bin/bash", "Interval": "10s"}, "docker"),
        ({"Script": "exit 0", "Interval": "10s"}, "script"),
        ({"AliasService": "web"}, "alias"),
        ({"alias_node": "n2"}, "alias"),
        ({"OSService": "nginx", "Interval": "10s"}, "os_service"),
    ],
)
def test_kind_is_consuls_type(body: dict[str, Any], kind: str) -> None:
    assert parse_check_definition(body).kind == kind


def test_h2ping_uses_tls_unless_told_otherwise() -> None:
    assert parse_check_definition({"H2PING": "h:1", "Interval": "1s"}).h2ping_use_tls
    assert not parse_check_definition(
        {"H2PING": "h:1", "Interval": "1s", "h2ping_use_tls": False}
    ).h2ping_use_tls


def test_old_script_runs_through_a_shell() -> None:
    assert parse_check_definition({"Script": "exit 1", "Interval": "1s"}).command == (
        "/bin/sh",
        "-c",
        "exit 1",
    )
    docker = parse_check_definition(
        {"Script": "x", "DockerContainerID": "c", "Shell": "/bin/bash", "Interval": "1s"}
    )
    assert docker.command == ("/bin/bash", "-c", "x")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"TCP": "h:1", "Interval": "abc"}, 'Invalid check: Interval: time: invalid duration "abc"'),
        (
            {"TCP": "h:1"},
            "Invalid check: Interval: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService",
        ),
        ({}, "Invalid check: TTL: TTL must be > 0 for TTL checks"),
        ({"TTL": "10s", "Interval": "10s"}, "Invalid check: TTL: Interval and TTL cannot both be specified"),
        ({"HTTP": "http://h/", "TCP": "h:1", "Interval": "1s"}, "Invalid check: TCP: only one check type"),
        ({"AliasService": "web", "TTL": "1s"}, "Invalid check: TTL: TTL must be not be set for Alias checks"),
        (
            {"TTL": "1s", "OutputMaxSize": -1},
            "Invalid check: OutputMaxSize: MaxOutputMaxSize must be positive",
        ),
        (
            {"TTL": "1s", "FailuresBeforeWarning": 3, "FailuresBeforeCritical": 1},
            "Invalid check: FailuresBeforeWarning: FailuresBeforeWarning can't be higher",
        ),
        ({"TTL": "1s", "Status": "ok"}, "Invalid check: Status: Bad check status"),
        ({"TTL": "1s", "Header": ["x"]}, "Invalid check: Header: expected an object"),
        ({"TTL": "1s", "TLSSkipVerify": "yes"}, "Invalid check: TLSSkipVerify: expected a boolean"),
        ({"TTL": True}, "Invalid check: TTL: expected a duration"),
    ],
)
def test_invalid_bodies_name_the_field(body: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckDefinitionError) as caught:
        parse_check_definition(body)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_nulls_and_unknown_keys_are_ignored() -> None:
    d = parse_check_definition({"TTL": "5s", "Notes": None, "Type": "ttl", "CreateIndex": 4})
    assert (d.kind, d.notes) == ("ttl", "")


def test_definition_json_matches_consuls_shape() -> None:
    d = parse_check_definition(
        {"HTTP": "http://h/", "Interval": "90s", "Timeout": "500ms", "Header": {"A": "b"}, "ServiceID": "s"}
    )
    assert d.to_definition_dict() == {
        "HTTP": "http://h/",
        "Header": {"A": ["b"]},
        "Interval": "1m30s",
        "Timeout": "500ms",
    }
    assert parse_check_definition({"TTL": "15s"}).to_definition_dict() == {"TTL": 15_000_000_000}


def test_every_field_has_a_key() -> None:
    """Each dataclass field must be reachable from JSON, or it could never be set."""
    body = {
        "CheckID": "i", "Name": "n", "ServiceID": "s", "Status": "passing", "Notes": "o",
        "Args": ["a"], "Script": "", "HTTP": "", "Method": "GET", "Header": {}, "Body": "",
        "TLSSkipVerify": False, "TLSServerName": "", "DisableRedirects": False, "TCP": "",
        "TCPUseTLS": False, "UDP": "", "TTL": 0, "GRPC": "", "GRPCUseTLS": False, "H2PING": "",
        "H2PingUseTLS": True, "DockerContainerID": "", "Shell": "", "AliasNode": "",
        "AliasService": "", "OSService": "", "Interval": "1s", "Timeout": "1s",
        "SuccessBeforePassing": 0, "FailuresBeforeWarning": 0, "FailuresBeforeCritical": 0,
        "DeregisterCriticalServiceAfter": "0", "OutputMaxSize": 0,
    }  # fmt: skip
    assert len(body) == len(CheckDefinition.__dataclass_fields__)
    assert parse_check_definition(body).kind == "script"
