"""``waypost snapshot save|restore|inspect`` as a script would run them, against a real agent."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from cli_support import Runner, run_cli

from waypost.testing import AgentProcess


def test_save_restore_inspect_round_trip(waypost: Runner, dev_agent: AgentProcess, tmp_path: Path) -> None:
    dev_agent.put("/v1/kv/cli/snap", b"before")
    path = tmp_path / "backup.snap"
    saved = waypost("snapshot", "save", str(path))
    assert saved.code == 0, saved.err
    match = re.fullmatch(r"Saved and verified snapshot to index (\d+)\n", saved.out)
    assert match
    assert not (tmp_path / "backup.snap.unverified").exists()
    assert path.stat().st_mode & 0o777 == 0o600

    inspected = waypost("snapshot", "inspect", str(path))
    assert inspected.code == 0, inspected.err
    lines = inspected.out.splitlines()
    assert [line.split()[0] for line in lines[:5]] == ["ID", "Size", "Index", "Term", "Version"]
    assert lines[2].split() == ["Index", match.group(1)]
    # Go's tabwriter as Consul sets it up: the widest label (" Version") plus 6 spaces.
    assert lines[0][:14] == " ID" + " " * 11
    assert lines[0][14:].startswith("1-" + match.group(1) + "-")
    assert lines[6].split() == ["Type", "Count", "Size"]
    assert any(line.split()[:1] == ["KVS"] for line in lines)
    assert lines[-1].split()[0] == "Total"

    as_json = waypost("snapshot", "inspect", "-format=json", str(path))
    assert '"Index": ' + match.group(1) in as_json.out

    dev_agent.put("/v1/kv/cli/snap", b"after")
    restored = waypost("snapshot", "restore", str(path))
    assert (restored.code, restored.out, restored.err) == (0, "Restored snapshot\n", "")
    assert dev_agent.request("GET", "/v1/kv/cli/snap?raw")[2] == b"before"


def test_bad_files_and_arguments(waypost: Runner, dev_agent: AgentProcess, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.snap"
    bogus.write_bytes(gzip.compress(b"not a tar at all"))
    dev_agent.put("/v1/kv/cli/guard", b"intact")

    r = waypost("snapshot", "restore", str(bogus))
    assert r.code == 1
    assert r.err.startswith(
        "Error restoring snapshot: Unexpected response code: 400 (failed to read snapshot file"
    )
    assert dev_agent.request("GET", "/v1/kv/cli/guard?raw")[2] == b"intact"

    r = waypost("snapshot", "inspect", str(bogus))
    assert r.code == 1
    assert r.err.startswith("Error reading snapshot: failed to read snapshot file")

    missing = str(tmp_path / "missing.snap")
    for sub in ("restore", "inspect"):
        r = waypost("snapshot", sub, missing)
        assert r.code == 1
        assert r.err.startswith("Error opening snapshot file: ")
    for sub in ("save", "restore", "inspect"):
        assert (waypost("snapshot", sub).code, waypost("snapshot", sub).err) == (1, "Missing FILE argument\n")
        r = waypost("snapshot", sub, "a", "b")
        assert (r.code, r.err) == (1, "Too many arguments (expected 1, got 2)\n")
    assert waypost("snapshot").code == 1
    assert waypost("snapshot", "-h").code == 0
    assert waypost("snapshot", "inspect", "-format=yaml", missing).code == 1


def test_save_reports_an_unreachable_agent(tmp_path: Path) -> None:
    r = run_cli(None, "snapshot", "save", "-http-addr=127.0.0.1:1", str(tmp_path / "x.snap"))
    assert r.code == 1
    assert r.err.startswith("Error saving snapshot: ")
    assert not (tmp_path / "x.snap").exists()
