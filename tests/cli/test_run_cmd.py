"""``waypost run``'s command line: every mistake is refused before anything starts.

The sidekick's behaviour around real processes is in tests/e2e/test_sidekick.py.
"""

from __future__ import annotations

import pytest
from cli_support import Runner


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-port", "80", "--", "true"), "Error: Missing service name: -service is required\n"),
        (("-service", "web", "--", "true"), "Error: Invalid -port 0: must be between 1 and 65535\n"),
        (
            ("-service", "web", "-port", "80"),
            "Error: Missing command: waypost run [options] -- COMMAND [ARGS...]\n",
        ),
        (
            ("-service", "web", "-port", "80", "-check-http", "/h", "-check-tcp", "--", "true"),
            "Error: -check-http and -check-tcp are exclusive: choose one\n",
        ),
        (
            ("-service", "web", "-port", "80", "-check-ttl", "1s", "-check-interval", "2s", "--", "true"),
            "Error: -check-interval must be shorter than -check-ttl, or the check lapses between beats\n",
        ),
        (
            (
                "-service",
                "web",
                "-port",
                "80",
                "-addr",
                "127.0.0.1:1",
                "-http-addr",
                "127.0.0.1:2",
                "--",
                "true",
            ),
            "Error: -addr and -http-addr both name the agent: give one\n",
        ),
        (
            ("-service", "web", "-port", "80", "-addr", "ftp://127.0.0.1:1", "--", "true"),
            "Error: Unknown protocol scheme: ftp\n",
        ),
        (
            ("-service", "web", "-port", "80", "-env-from", "a,,b", "--", "true"),
            "Error: -env-from: empty service name",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(
    waypost: Runner, args: tuple[str, ...], message: str
) -> None:
    r = waypost("run", *args)
    assert (r.code, r.out) == (1, "")
    assert r.err.startswith(message)


def test_flag_syntax_errors_print_the_usage(waypost: Runner) -> None:
    r = waypost("run", "-service", "web", "-port", "eighty", "--", "true")
    assert r.code == 1
    assert r.err.startswith('invalid value "eighty" for flag -port: parse error\n\nUsage: waypost run')
    r = waypost("run", "-check-ttl", "10", "--", "true")
    assert r.err.startswith('invalid value "10" for flag -check-ttl: time: missing unit in duration "10"')
    r = waypost("run", "-bogus")
    assert r.err.startswith("flag provided but not defined: -bogus")


def test_help_lists_the_options(waypost: Runner) -> None:
    r = waypost("run", "-h")
    assert r.code == 0
    for flag in (
        "-service",
        "-port",
        "-check-http",
        "-check-tcp",
        "-check-ttl",
        "-env-from",
        "-no-wait",
        "-http-addr",
    ):
        assert f"  {flag}" in r.out
    assert "run" in waypost("--help").err
