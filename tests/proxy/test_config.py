"""The proxy's configuration file: listeners, defaults, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.proxy.config import (
    ConfigError,
    ListenerConfig,
    load_file,
    meta_listener,
    parse_config,
    vip_listener,
)

HCL = """
proxy {
  balance = "least_conn"
  connect_timeout = "500ms"
  status_addr = "127.0.0.1:9100"
  outlier {
    consecutive_failures = 2
    ejection = "10s"
  }
  listener {
    service = "web"
    bind    = "127.0.0.1:9000"
    tags    = ["v2"]
    filter  = "Service.Meta.zone == \\"a\\""
  }
  listener {
    service  = "dns"
    bind     = "127.0.0.1:9053"
    protocol = "udp"
    balance  = "weighted"
  }
}
"""


def test_listeners_take_the_proxy_blocks_defaults() -> None:
    config = parse_config("proxy.hcl", HCL)
    web, dns = config.listeners
    assert web == ListenerConfig(
        "web", "127.0.0.1", 9000, tags=("v2",), filter='Service.Meta.zone == "a"', balance="least_conn",
        connect_timeout=0.5,
    )  # fmt: skip
    assert (dns.protocol, dns.balance, dns.port) == ("udp", "weighted", 9053)
    assert (config.outlier.consecutive_failures, config.outlier.ejection) == (2, 10.0)
    assert config.status_addr == "127.0.0.1:9100"
    assert web.name == "tcp listener 127.0.0.1:9000 for service 'web'"


def test_json_files_and_meta_listeners(tmp_path: Path) -> None:
    path = tmp_path / "proxy.json"
    path.write_text(
        '{"proxy": {"meta_bind": "127.0.0.2", "listener": [{"service": "a", "bind": "[::1]:81"}]}}'
    )
    config = load_file(str(path))
    assert config.listeners[0].bind == "[::1]:81"
    made = meta_listener(config, "api", 7000)
    assert (made.bind, made.from_meta, made.balance) == ("127.0.0.2:7000", True, "round_robin")


def test_vip_listeners_take_the_proxy_blocks_defaults() -> None:
    config = parse_config("p.hcl", 'proxy {\n  vip_listeners = true\n  balance = "least_conn"\n}')
    assert config.vip_listeners
    made = vip_listener(config, "web", "127.240.0.7", 8080)
    assert (made.bind, made.virtual, made.balance, made.from_meta) == (
        "127.240.0.7:8080",
        True,
        "least_conn",
        False,
    )
    with pytest.raises(ConfigError, match=r"proxy.vip_listeners: expected a boolean, got 'yes'"):
        parse_config("p.hcl", 'proxy {\n  vip_listeners = "yes"\n}')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("proxy {\n  listener {\n    service = \n  }\n}", r"failed to parse p.hcl: .*line 3"),
        ("proxy {\n  listener {\n", r"failed to parse p.hcl: .*line 3"),
        (
            'proxy {\n  listener {\n    service = "web"\n    bind = "127.0.0.1:1"\n  }\n'
            '  listener {\n    service = "web"\n    bind = "127.0.0.1:2"\n    balance = "fastest"\n  }\n}',
            r"p.hcl: line 7: listener.balance: must be one of round_robin, least_conn, random_two, "
            r"weighted, got 'fastest'",
        ),
        (
            'proxy {\n listener {\n  service = "web"\n  bind = "localhost:80"\n }\n}',
            r"line 3: listener.bind: 'localhost'",
        ),
        ('proxy {\n listener {\n  service = "web"\n }\n}', r"line 3: listener: missing bind"),
        ('proxy {\n listener {\n  service = "w"\n  bind = "127.0.0.1:70000"\n }\n}', r"out of range"),
        (
            'proxy {\n listener {\n  service = "w"\n  bind = "127.0.0.1:1"\n  port = 3\n }\n}',
            r"unsupported setting 'port'",
        ),
        (
            "proxy {\n  outlier {\n    consecutive_failures = 0\n  }\n}",
            r"consecutive_failures: expected a positive",
        ),
        ('proxy {\n  connect_timeout = "soon"\n}', r"proxy.connect_timeout"),
        ("listeners {\n}", r"unsupported setting 'listeners'"),
        (
            'proxy {\n listener {\n  service = "a"\n  bind = "127.0.0.1:5"\n }\n'
            ' listener {\n  service = "b"\n  bind = "127.0.0.1:5"\n }\n}',
            r"listener 127.0.0.1:5 for service 'b': 127.0.0.1:5 is already the bind of tcp listener",
        ),
    ],
)
def test_bad_configuration_names_file_line_and_setting(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config("p.hcl", text)


def test_json_syntax_errors_carry_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "proxy": {\n    "listener": [\n  }\n}')
    with pytest.raises(ConfigError, match=r"bad.json: .*line 4"):
        load_file(str(path))
    with pytest.raises(ConfigError, match=r"missing.hcl: No such file"):
        load_file(str(tmp_path / "missing.hcl"))


def test_the_deployment_guides_example_is_valid() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "deployment.md").read_text()
    example = guide.split("## Server-side discovery", 1)[1].split("```hcl", 1)[1].split("```", 1)[0]
    (web,) = parse_config("deployment.md", example).listeners
    assert (web.service, web.balance, web.filter) == ("web", "weighted", 'Service.Meta.zone == "a"')
