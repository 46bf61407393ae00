"""Ports for listeners that would sit idle: a warning when idle in Consul too, an error when
meant to serve what waypost cannot; HTTPS with a certificate is served and says nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from waypost.config import AgentConfig, ConfigError, load_config


def load(tmp_path: Path, *files: str | dict[str, object], flags: tuple[str, ...] = ()) -> AgentConfig:
    argv = ["-data-dir", str(tmp_path / "data"), *flags]
    for i, content in enumerate(files):
        path = tmp_path / (f"{i}.hcl" if isinstance(content, str) else f"{i}.json")
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        argv += ["-config-file", str(path)]
    return load_config(argv)


def idle(cfg: AgentConfig) -> list[str]:
    return [w for w in cfg.warnings if "nothing listens" in w]


def test_default_and_disabled_ports_say_nothing(tmp_path: Path) -> None:
    assert idle(load(tmp_path)) == []
    assert idle(load(tmp_path, {"ports": {"https": -1, "grpc": 0, "grpc_tls": -1}})) == []


def test_dev_mode_grpc_port_is_waypost_s_own_default(tmp_path: Path) -> None:
    cfg = load_config(["-dev"])
    assert cfg.ports.grpc == 8502
    assert idle(cfg) == []


def test_tls_ports_without_a_certificate_are_a_warning(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"ports": {"https": 8501, "grpc_tls": 8503}})
    assert idle(cfg) == [
        "ports.https = 8501: no TLS certificate is configured and waypost does not serve HTTPS; "
        "nothing listens on this port",
        "ports.grpc_tls = 8503: no TLS certificate is configured and waypost does not serve gRPC over TLS; "
        "nothing listens on this port",
    ]


def test_grpc_port_is_a_warning(tmp_path: Path) -> None:
    cfg = load(tmp_path, flags=("-grpc-port", "8502"))
    assert idle(cfg) == [
        "ports.grpc = 8502: waypost has no gRPC interface (xDS, peering, dataplane); "
        "nothing listens on this port"
    ]


@pytest.mark.parametrize(
    "content",
    [
        {"ports": {"https": 8501}, "cert_file": "/c.pem", "key_file": "/k.pem"},
        'ports { https = 8501 }\ntls { https { cert_file = "/c.pem" } }',
        'ports { https = 8501 }\ntls { defaults { cert_file = "/c.pem" } }',
    ],
)
def test_https_port_with_a_certificate_is_served(tmp_path: Path, content: str | dict[str, object]) -> None:
    cfg = load(tmp_path, content)
    assert cfg.tls.https.cert_file == "/c.pem"
    assert idle(cfg) == []


def test_https_certificate_from_auto_encrypt_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, {"ports": {"https": 8501}, "auto_encrypt": {"tls": True}})
    assert str(err.value).startswith("ports.https: auto_encrypt.tls would give HTTPS a certificate")


@pytest.mark.parametrize(
    ("content", "port", "key"),
    [
        (
            'ports { grpc_tls = 8503 }\ntls { defaults { cert_file = "/c.pem" } }',
            "grpc_tls",
            "tls.defaults.cert_file",
        ),
        (
            {"ports": {"grpc_tls": 8503}, "tls": {"grpc": {"use_auto_cert": True}}},
            "grpc_tls",
            "tls.grpc.use_auto_cert",
        ),
    ],
)
def test_tls_port_with_a_certificate_stops_start_up_naming_both_keys(
    tmp_path: Path, content: str | dict[str, object], port: str, key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, content)
    assert str(err.value).startswith(f"ports.{port}: waypost does not serve ")
    assert f"yet {key} configures a certificate for it; set ports.{port} = -1" in str(err.value)
    assert err.value.source is None


def test_a_certificate_for_another_listener_leaves_the_port_a_warning(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'ports { https = 8501 }\ntls { grpc { cert_file = "/c.pem" } }')
    assert [w.split(" = ")[0] for w in idle(cfg)] == ["ports.https"]


def test_a_later_source_disabling_the_port_wins(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"ports": {"grpc_tls": 8503}, "cert_file": "/c.pem"}, flags=("-grpc-tls-port", "-1"))
    assert cfg.ports.grpc_tls == -1
    assert idle(cfg) == []
