"""consul-template's configuration: the -template and -wait flags, the HCL file."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.template.config import (
    Config,
    ConfigError,
    TemplateSpec,
    Wait,
    apply_file,
    parse_template_flag,
    parse_wait,
    validate,
)


def test_template_flag_keeps_colons_in_the_command() -> None:
    spec = parse_template_flag("in.ctmpl:out.conf:sh -c 'echo a:b'")
    assert (spec.source, spec.destination, spec.command) == ("in.ctmpl", "out.conf", ["sh -c 'echo a:b'"])
    assert parse_template_flag("in.ctmpl").destination == ""


def test_wait() -> None:
    assert parse_wait("2s:10s") == Wait(2.0, 10.0)
    assert parse_wait("5s") == Wait(5.0, 20.0)
    with pytest.raises(ConfigError, match="max must be larger than min"):
        parse_wait("10s:2s")
    with pytest.raises(ConfigError, match='-wait: time: invalid duration "x"'):
        parse_wait("x", "-wait")


def test_hcl_file(tmp_path: Path) -> None:
    path = tmp_path / "ct.hcl"
    path.write_text(
        """
consul {
  address = "127.0.0.1:8501"
  token = "t"
}
wait { min = "2s" max = "10s" }
max_stale = "10m"
err_on_failed_lookup = true
template {
  source = "a.ctmpl"
  destination = "a.out"
  command = ["reload", "a"]
  command_timeout = "5s"
  perms = 0600
  backup = true
  error_on_missing_key = true
  wait { min = "1s" }
  left_delimiter = "[["
  right_delimiter = "]]"
}
template {
  contents = "{{ key \\"k\\" }}"
  destination = "b.out"
  exec { command = "reload b" timeout = "3s" }
}
exec {
  command = "server"
  reload_signal = "SIGHUP"
}
"""
    )
    config = Config()
    apply_file(config, str(path))
    assert (config.address, config.token, config.wait, config.max_stale) == (
        "127.0.0.1:8501",
        "t",
        Wait(2, 10),
        600,
    )
    assert config.err_on_failed_lookup
    a, b = config.templates
    assert (a.command, a.command_timeout, a.perms, a.backup, a.error_on_missing_key) == (
        ["reload", "a"], 5.0, 0o600, True, True,
    )  # fmt: skip
    assert a.wait == Wait(1, 4)
    assert (a.left_delimiter, a.right_delimiter, b.left_delimiter) == ("[[", "]]", "{{")
    assert (b.contents, b.command, b.command_timeout) == ('{{ key "k" }}', ["reload b"], 3.0)
    assert config.exec is not None
    assert (config.exec.command, config.exec.reload_signal) == (["server"], "SIGHUP")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('template { sorce = "a" }', "template: unsupported setting 'sorce'"),
        ('template { perms = "rw" }', "template.perms: invalid file mode 'rw'"),
        ('template { command_timeout = "soon" }', 'template.command_timeout: time: invalid duration "soon"'),
        ('wait { min = "5s" max = "1s" }', "wait: max must be larger than min"),
        ("vault { }", "unsupported setting 'vault'"),
        ("template {", "failed to parse"),
    ],
)
def test_bad_files_name_the_setting(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.hcl"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", "\\(")):
        apply_file(Config(), str(path))


def test_validate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="At least one template"):
        validate(Config())
    with pytest.raises(ConfigError, match="source does not exist"):
        validate(Config(templates=[TemplateSpec(source=str(tmp_path / "nope"), destination="x")]))
    with pytest.raises(ConfigError, match="mutually exclusive"):
        validate(Config(templates=[TemplateSpec(source="a", contents="b", destination="x")]))
