"""Each kind of configuration error, and that it names the file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from waypost.config import ConfigError, FlagError, load_config


def error_for(tmp_path: Path, content: str | dict[str, object], name: str = "agent.json") -> ConfigError:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ConfigError) as err:
        load_config(["-dev", "-config-file", str(path)])
    assert not isinstance(err.value, FlagError)
    assert err.value.source == str(path)
    return err.value


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"dns_config": {"udp_answr_limit": 3}}, "invalid config key dns_config.udp_answr_limit"),
        ({"datacentre": "dc1"}, "invalid config key datacentre"),
        ({"acl": {"tokens": {"root": "x"}}}, "invalid config key acl.tokens.root"),
        ({"ports": {"http": "abc"}}, 'ports.http: expected an integer, got "abc"'),
        ({"ports": {"http": 1.5}}, "ports.http: expected an integer, got 1.5"),
        ({"ports": {"http": True}}, "ports.http: expected an integer, got true"),
        ({"server": "yes"}, 'server: expected a boolean, got "yes"'),
        ({"retry_join": "a"}, 'retry_join: expected a list, got "a"'),
        ({"retry_join": ["a", 1]}, "retry_join[1]: expected a string, got 1"),
        ({"ports": 8500}, "ports: expected an object, got 8500"),
        ({"services": [{"name": "a"}, "b"]}, 'services[1]: expected an object, got "b"'),
        ({"service": "web"}, 'service: expected an object, got "web"'),
        ({"ports": {"http": 70000}}, "ports.http: invalid port: 70000"),
        (
            {"retry_interval": "30"},
            'retry_interval: invalid duration: "30": time: missing unit in duration "30"',
        ),
        (
            {"dns_config": {"service_ttl": {"*": "5 s"}}},
            'dns_config.service_ttl.*: invalid duration: "5 s": time: unknown unit " s" in duration "5 s"',
        ),
        (
            {"dns_config": {"max_stale": 10}},
            'dns_config.max_stale: expected a duration string such as "10s", got 10',
        ),
        ({"client_addr": "localhost"}, "client_addr: invalid ip address: localhost"),
        ({"bind_addr": "10.0.0.1 10.0.0.2"}, "bind_addr: multiple addresses found: 10.0.0.1 10.0.0.2"),
        ({"bind_addr": "{{ GetPrivateIP }}"}, "bind_addr: go-sockaddr templates are not supported"),
        ({"datacenter": "dc 1"}, 'datacenter: cannot be "dc 1". Please use only [a-z0-9-_].'),
        ({"node_id": "not-a-uuid"}, 'node_id: invalid UUID "not-a-uuid"'),
        ({"log_level": "loud"}, 'log_level: invalid log level "loud"'),
        (
            {"acl": {"default_policy": "block"}},
            'acl.default_policy: must be one of "allow", "deny", got "block"',
        ),
        ({"encrypt": "not base64!"}, "encrypt: invalid key"),
        ({"store": "redis://x"}, 'store: unsupported store URL "redis://x"'),
        ({"store": "sqlite://relative.db"}, "store: sqlite store needs an absolute path"),
        ({"bootstrap_expect": -1}, "bootstrap_expect: cannot be -1. Must be greater than or equal to zero"),
        ({"check_output_max_size": 0}, "check_output_max_size: cannot be 0. Must be positive"),
        ({"dev": True}, "invalid config key dev"),
        ([1, 2], "the top level must be a JSON object"),
        ("{", "Expecting property name enclosed in double quotes"),
    ],
)
def test_json_errors_name_file_key_and_problem(
    tmp_path: Path, content: str | dict[str, object], problem: str
) -> None:
    err = error_for(tmp_path, content if not isinstance(content, list) else json.dumps(content))
    assert str(err).startswith(f"failed to parse {tmp_path / 'agent.json'}: {problem}")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("ports { htp = 1 }", "invalid config key ports.htp"),
        ('ports { http = "80" }', 'ports.http: expected an integer, got "80"'),
        ("node_name = some_identifier", "node_name: unsupported HCL expression some_identifier"),
        ("node_name = ", "Unexpected token"),
    ],
)
def test_hcl_errors_name_file_key_and_problem(tmp_path: Path, content: str, problem: str) -> None:
    err = error_for(tmp_path, content, name="agent.hcl")
    assert str(err).startswith(f"failed to parse {tmp_path / 'agent.hcl'}: {problem}")


def test_inline_hcl_errors_name_the_snippet() -> None:
    with pytest.raises(ConfigError, match=r"^failed to parse flags-1\.hcl: invalid config key nope$"):
        load_config(["-dev", "-hcl", 'node_name = "a"', "-hcl", "nope = 1"])


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"config: Open failed on /nonexistent/agent\.json\. No such file"):
        load_config(["-dev", "-config-file", "/nonexistent/agent.json"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-server"], "data_dir cannot be empty"),
        (["-dev", "-bootstrap-expect=3"], "'bootstrap_expect > 0' not allowed in dev mode"),
        (["-dev", "-server=false", "-bootstrap"], "'bootstrap = true' requires 'server = true'"),
        (["-dev", "-server=false", "-bootstrap-expect=3"], "'bootstrap_expect > 0' requires 'server = true'"),
        (
            ["-dev", "-bootstrap=false", "-hcl", "bootstrap = true\nbootstrap_expect = 2"],
            "'bootstrap_expect > 0' not allowed in dev mode",
        ),
        (["-dev", "-advertise", "0.0.0.0"], "Advertise address cannot be 0.0.0.0, :: or [::]"),
        (["-dev", "-recursor", "0.0.0.0:53"], "DNS recursor address cannot be 0.0.0.0, :: or [::]"),
        (["-dev", "-alt-domain", "service.example."], "alt_domain cannot start with {service,connect,"),
        (
            ["-dev", "-hcl", "performance { raft_multiplier = 11 }"],
            "performance.raft_multiplier cannot be 11. Must be between 1 and 10",
        ),
    ],
)
def test_errors_across_settings(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(args)
    assert str(err.value).startswith(message)
    assert err.value.source is None


def test_data_dir_must_be_a_directory(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        load_config(["-server", "-bootstrap", "-data-dir", str(not_a_dir)])


def test_corrupt_stored_node_id(tmp_path: Path) -> None:
    (tmp_path / "node-id").write_text("garbage")
    with pytest.raises(ConfigError, match=r"node ID in .*node-id: invalid UUID \"garbage\""):
        load_config(["-data-dir", str(tmp_path)])
