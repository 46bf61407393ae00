"""``waypost intention``: create, get, list, match, check and delete from the real CLI,
with Consul's output and exit codes."""

from __future__ import annotations

from cli_support import Runner


def test_the_intention_lifecycle(waypost: Runner) -> None:
    r = waypost("intention", "create", "-description", "front to back", "-meta", "team=a", "web", "db")
    assert (r.code, r.out.strip(), r.err) == (0, "Created: web => db (allow)", "")
    r = waypost("intention", "create", "-deny", "*", "db")
    assert (r.code, r.out.strip()) == (0, "Created: * => db (deny)")
    r = waypost("intention", "create", "web", "db")
    assert r.code == 1
    assert 'Error creating intention "web => db (allow)"' in r.err
    assert "duplicate intention found" in r.err

    r = waypost("intention", "get", "web", "db")
    assert r.code == 0
    lines = dict(line.split(":", 1) for line in r.out.strip().splitlines())
    shown = ("Source", "Destination", "Action", "Description")
    assert {k: v.strip() for k, v in lines.items() if k in shown} == {
        "Source": "web", "Destination": "db", "Action": "allow", "Description": "front to back",
    }  # fmt: skip
    assert lines["Meta[team]"].strip() == "a"

    r = waypost("intention", "list")
    rows = [line.split() for line in r.out.strip().splitlines()]
    assert rows[0] == ["ID", "Source", "Action", "Destination", "Precedence"]
    assert [row[-4:] for row in rows[1:]] == [["web", "allow", "db", "9"], ["*", "deny", "db", "8"]]

    r = waypost("intention", "match", "db")
    assert r.out.splitlines() == ["web => db (allow)", "* => db (deny)"]
    r = waypost("intention", "match", "-source", "api")
    assert r.out.splitlines() == ["* => db (deny)"]

    r = waypost("intention", "check", "web", "db")
    assert (r.code, r.out.strip()) == (0, "Allowed")
    r = waypost("intention", "check", "api", "db")
    assert (r.code, r.out.strip()) == (2, "Denied")

    r = waypost("intention", "create", "-replace", "-deny", "web", "db")
    assert r.code == 0
    assert waypost("intention", "check", "web", "db").code == 2

    assert waypost("intention", "delete", "web", "db").out.strip() == "Intention deleted."
    r = waypost("intention", "get", "web", "db")
    assert (r.code, r.err.strip()) == (1, "Error reading the intention: Intention not found")


def test_bad_usage_is_refused(waypost: Runner) -> None:
    r = waypost("intention", "create", "web")
    assert r.code == 1
    assert "requires exactly 2 arguments" in r.err
    r = waypost("intention", "create", "-allow", "-deny", "a", "b")
    assert (r.code, r.err.strip()) == (1, "Only one of -allow or -deny may be specified")
    r = waypost("intention")
    assert r.code == 1
    assert "Subcommands:" in r.err
