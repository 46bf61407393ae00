"""Definitions registered through the API are kept in one file, replaced whole on every
change and readable only by the agent's user."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.agent.persist import LocalDefinitions, save_json


def test_definitions_survive_a_restart(tmp_path: Path) -> None:
    kept = LocalDefinitions(str(tmp_path))
    kept.keep_service("web", {"Name": "web", "Port": 80})
    kept.keep_check("ping", {"Name": "ping", "TTL": "10s"})
    kept.forget_check("ping")
    again = LocalDefinitions(str(tmp_path))
    again.load()
    assert (again.services, again.checks) == ({"web": {"Name": "web", "Port": 80}}, {})


def test_a_save_replaces_the_file_whole_and_keeps_it_private(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("left over, readable by all")
    path.chmod(0o644)
    (tmp_path / "state.tmp").write_text("half a file from a crash")
    save_json(path, {"a": 1})
    assert path.read_text() == '{"a": 1}'
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_without_a_data_dir_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    LocalDefinitions("").keep_service("web", {"Name": "web"})
    assert not list(tmp_path.iterdir())
