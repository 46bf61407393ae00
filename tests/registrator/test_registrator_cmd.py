"""``waypost registrator``'s command line: Registrator's start-up checks and messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from waypost.cli.main import COMMANDS
from waypost.cli.registrator_cmd import run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-ttl", "30"], "-ttl and -ttl-refresh must be specified together or not at all"),
        (["-ttl-refresh", "5"], "-ttl and -ttl-refresh must be specified together or not at all"),
        (["-ttl", "5", "-ttl-refresh", "5"], "-ttl must be greater than -ttl-refresh"),
        (["-retry-interval", "0"], "-retry-interval must be greater than 0"),
        (["-deregister", "sometimes"], '-deregister must be "always" or "on-success"'),
        (
            ["consul://a:1", "-internal"],
            "Extra unparsed arguments:\n  -internal\nOptions should come before the registry URI argument.",
        ),
        (["etcd://127.0.0.1:2379"], "unrecognized adapter: etcd://127.0.0.1:2379"),
        (["-resync", "soon"], 'invalid value "soon" for flag -resync: parse error'),
        (["-bogus"], "flag provided but not defined: -bogus"),
    ],
)
def test_bad_command_lines_exit_1_with_registrators_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(args) == 1
    assert message in capsys.readouterr().err


def test_help_lists_registrators_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-h"]) == 0
    text = capsys.readouterr().out
    flags = (
        "ip internal explicit tags resync cleanup deregister retry-attempts retry-interval ttl ttl-refresh"
    )
    for flag in [*flags.split(), "network", "hostname", "http-addr", "token"]:
        assert f"\n  -{flag}=" in text or f"\n  -{flag}\n" in text


def test_registered_as_a_waypost_command() -> None:
    assert COMMANDS["registrator"][0] == "waypost.cli.registrator_cmd"
    done = subprocess.run(
        [sys.executable, "-m", "waypost", "registrator", "-deregister", "x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (done.returncode, done.stderr.strip()) == (1, '-deregister must be "always" or "on-success"')
