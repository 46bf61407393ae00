"""Command-line flags: Go's flag syntax and ``consul agent``'s flag set."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.config import ConfigError, FlagError, load_config


def dev(*args: str) -> list[str]:
    return ["-dev", *args]


@pytest.mark.parametrize(
    "args",
    [
        ["-http-port", "9500"],
        ["-http-port=9500"],
        ["--http-port", "9500"],
        ["--http-port=9500"],
    ],
)
def test_value_flag_forms(args: list[str]) -> None:
    assert load_config(dev(*args)).ports.http == 9500


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-server"], True),
        (["--server"], True),
        (["-server=true"], True),
        (["-server=T"], True),
        (["-server=1"], True),
        (["-server=false"], False),
        (["-server=0"], False),
    ],
)
def test_bool_flag_forms(args: list[str], expected: bool, tmp_path: Path) -> None:
    assert load_config([*args, "-data-dir", str(tmp_path)]).server is expected


def test_bool_flag_does_not_take_the_next_argument() -> None:
    # Go stops at the first non-flag: "false" is an unexpected extra argument.
    with pytest.raises(FlagError, match=r"Unknown extra arguments: \[false\]"):
        load_config(["-dev", "false"])


def test_value_may_start_with_a_dash() -> None:
    assert load_config(dev("-node", "-odd-name")).node_name == "-odd-name"


def test_double_dash_ends_flags() -> None:
    with pytest.raises(FlagError, match=r"Unknown extra arguments: \[-server\]"):
        load_config(["-dev", "--", "-server"])


def test_repeatable_flags_accumulate(tmp_path: Path) -> None:
    cfg = load_config(
        dev(
            "-retry-join=a",
            "-retry-join",
            "b",
            "-recursor",
            "1.1.1.1",
            "-recursor=8.8.8.8:53",
            "-join",
            "c",
            "-node-meta",
            "rack:r1",
            "-node-meta=zone:z:1",
            "-node-meta",
            "bare",
        )
    )
    assert cfg.retry_join == ("a", "b")
    assert cfg.recursors == ("1.1.1.1", "8.8.8.8:53")
    assert cfg.start_join == ("c",)
    assert cfg.node_meta == {"rack": "r1", "zone": "z:1", "bare": ""}


def test_every_listed_flag_maps_to_its_key(tmp_path: Path) -> None:
    cfg = load_config(
        [
            "-server",
            "-bootstrap-expect=3",
            f"-data-dir={tmp_path}",
            "-client",
            "0.0.0.0",
            "-bind",
            "127.0.0.2",
            "-advertise",
            "127.0.0.3",
            "-https-port=8501",
            "-dns-port=8601",
            "-grpc-port=8502",
            "-serf-lan-port=9301",
            "-server-port=9300",
            "-node=n1",
            "-node-id=ADF4238A-882B-9DDC-4A9D-5B6758E4159E",
            "-datacenter=EU-West",
            "-domain=example.",
            "-alt-domain=alt.example.",
            "-log-level=warn",
            "-log-json",
            "-ui",
            "-retry-interval=5s",
            "-encrypt=pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
            "-enable-script-checks",
            "-pid-file=/run/waypost.pid",
            "-disable-host-node-id=false",
            "-store=etcd://10.0.0.1:2379,10.0.0.2:2379",
        ]
    )
    assert cfg.server
    assert cfg.bootstrap_expect == 3
    assert cfg.data_dir == str(tmp_path)
    assert (cfg.client_addr, cfg.bind_addr, cfg.advertise_addr) == ("0.0.0.0", "127.0.0.2", "127.0.0.3")
    assert (cfg.ports.https, cfg.ports.dns, cfg.ports.grpc) == (8501, 8601, 8502)
    assert (cfg.ports.serf_lan, cfg.ports.server) == (9301, 9300)
    assert cfg.node_name == "n1"
    assert cfg.node_id == "adf4238a-882b-9ddc-4a9d-5b6758e4159e"
    assert cfg.datacenter == "eu-west"
    assert cfg.primary_datacenter == "eu-west"
    assert (cfg.domain, cfg.alt_domain) == ("example.", "alt.example.")
    assert cfg.log_level == "warn"
    assert cfg.log_json
    assert cfg.ui_config.enabled
    assert cfg.retry_interval.seconds == 5
    assert cfg.enable_script_checks
    assert cfg.enable_local_script_checks
    assert cfg.pid_file == "/run/waypost.pid"
    assert not cfg.disable_host_node_id
    assert cfg.store == "etcd://10.0.0.1:2379,10.0.0.2:2379"


def test_node_consul_client_command_line(tmp_path: Path) -> None:
    """The command line node-consul's acceptance helper starts ``consul`` with."""
    config_file = tmp_path / "f.json"
    config_file.write_text('{"primary_datacenter":"dc1","acl":{"enabled":false},"enable_script_checks":true}')
    data_dir = tmp_path / "d"
    argv = ["-node", "node1", "-datacenter", "dc1", "-bind", "127.0.0.1", "-client", "127.0.0.1"]
    argv += ["-bootstrap", "-server", "-config-file", str(config_file)]
    argv += ["-data-dir", str(data_dir), "-pid-file", str(tmp_path / "p")]
    cfg = load_config(argv)
    assert (cfg.node_name, cfg.datacenter, cfg.bind_addr, cfg.client_addr) == (
        "node1",
        "dc1",
        "127.0.0.1",
        "127.0.0.1",
    )
    assert cfg.bootstrap
    assert cfg.server
    assert not cfg.acl.enabled
    assert cfg.enable_script_checks
    assert cfg.pid_file == str(tmp_path / "p")
    assert cfg.store == f"sqlite://{data_dir}/store.db"
    assert (data_dir / "node-id").read_text() == cfg.node_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-nope"], "flag provided but not defined: -nope"),
        (["--nope=1"], "flag provided but not defined: -nope"),
        (["-node"], "flag needs an argument: -node"),
        (["---x"], "bad flag syntax: ---x"),
        (["-=x"], "bad flag syntax: -=x"),
        (["-h"], "flag: help requested"),
        (["-help"], "flag: help requested"),
        (
            ["-http-port", "abc"],
            'invalid value "abc" for flag -http-port: strconv.Atoi: parsing "abc": invalid syntax',
        ),
        (
            ["-server=yes"],
            'invalid boolean value "yes" for -server: strconv.ParseBool: parsing "yes": invalid syntax',
        ),
        (["-dev", "-config-format=yaml"], "config: -config-format must be either 'hcl' or 'json'"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(FlagError) as err:
        load_config(args)
    assert str(err.value) == message


def test_flag_values_are_validated_like_file_values() -> None:
    with pytest.raises(ConfigError, match=r"failed to parse flags: ports.http: invalid port: 70000"):
        load_config(dev("-http-port", "70000"))
