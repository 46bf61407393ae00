"""``waypost validate``: Consul's output and exit codes, run as a script would run it."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import Result, run_cli


def validate(*args: str) -> Result:
    return run_cli(None, "validate", *args)


def write(path: Path, content: str | dict[str, object]) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_valid_files_and_directories(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    write(conf / "a.json", {"data_dir": str(tmp_path / "data"), "server": True})
    write(conf / "b.hcl", 'node_name = "web-1"\nservice { name = "web" }\n')
    extra = write(tmp_path / "extra.json", {"bootstrap_expect": 3})
    result = validate(str(conf), extra)
    assert (result.code, result.out, result.err) == (0, "Configuration is valid!\n", "")
    # Validating touches nothing: the data directory is the agent's to create.
    assert not (tmp_path / "data").exists()


def test_warnings_go_to_stderr_and_quiet_silences_everything(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", {"data_dir": str(tmp_path), "telemetry": {}, "ports": {"https": 8501}})
    result = validate(path)
    assert (result.code, result.out) == (0, "Configuration is valid!\n")
    assert result.err.splitlines() == [
        f"{path}: config key telemetry is not supported by waypost and is ignored",
        "ports.https = 8501: no TLS certificate is configured and waypost does not serve HTTPS; "
        "nothing listens on this port",
    ]
    assert validate("-quiet", path) == Result(0, "", "")


def test_invalid_config_fails_with_consul_s_prefix(tmp_path: Path) -> None:
    bad_key = write(tmp_path / "a.json", {"data_dir": str(tmp_path), "datacentre": "dc1"})
    assert validate(bad_key) == Result(
        1, "", f"Config validation failed: failed to parse {bad_key}: invalid config key datacentre\n"
    )
    # Like Consul, only the files are validated: no -dev, so data_dir is required.
    no_data_dir = write(tmp_path / "b.hcl", 'node_name = "x"')
    assert validate(no_data_dir) == Result(1, "", "Config validation failed: data_dir cannot be empty\n")
    bad_syntax = write(tmp_path / "c.json", "{")
    result = validate("-quiet", bad_syntax)
    assert result.code == 1
    assert result.err.startswith(f"Config validation failed: failed to parse {bad_syntax}: ")


def test_missing_path_and_missing_argument(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert validate(str(missing)) == Result(
        1, "", f"Config validation failed: config: Open failed on {missing}. No such file or directory\n"
    )
    assert validate() == Result(1, "", "Must specify at least one config file or directory\n")


def test_config_format(tmp_path: Path) -> None:
    conf = write(tmp_path / "agent.conf", f'data_dir = "{tmp_path}"')
    assert validate("-config-format=hcl", conf).code == 0
    assert validate("-config-format", "yaml", conf) == Result(
        1, "", "-config-format must be either 'hcl' or 'json'\n"
    )


def test_help_and_unknown_flag() -> None:
    shown = validate("-h")
    assert shown.code == 0
    assert shown.out.startswith("Usage: waypost validate [options] FILE_OR_DIRECTORY...")
    assert "-config-format=<value>" in shown.out
    assert "-quiet" in shown.out
    unknown = validate("-strict", "x.json")
    assert unknown.code == 1
    assert unknown.err.startswith("flag provided but not defined: -strict\n\nUsage: waypost validate")
