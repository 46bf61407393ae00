from __future__ import annotations

import json

from cli_support import Runner


def test_members_table(waypost: Runner) -> None:
    r = waypost("members")
    assert r.code == 0
    header, row = r.out.splitlines()
    columns = ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"]
    assert header.split() == columns
    cells = row.split()
    assert cells[0] == "test-node"
    assert cells[2:4] == ["alive", "server"]
    assert cells[6:] == ["dc1", "default", "<all>"]
    # Columns line up: every value starts where its header does.
    assert row.index(cells[2]) == header.index("Status")


def test_members_detailed_and_status_filter(waypost: Runner) -> None:
    r = waypost("members", "-detailed")
    assert r.code == 0
    assert r.out.splitlines()[0].split() == ["Node", "Address", "Status", "Tags"]
    assert "role=consul" in r.out
    assert waypost("members", "-status=alive").code == 0
    none = waypost("members", "--status", "failed|left")
    assert (none.code, none.out) == (2, "")
    bad = waypost("members", "-status=(")
    assert bad.code == 1
    assert bad.err.startswith("Failed to compile status regexp")


def test_version(waypost: Runner) -> None:
    r = waypost("version")
    assert (r.code, r.out.splitlines()[0][:9]) == (0, "Waypost v")
    assert json.loads(waypost("version", "-format=json").out)["Version"]
    assert waypost("version", "-format=yaml").code == 1
    assert waypost("--version").code == 0
