"""Rendered files are replaced atomically, only when changed, keeping mode and owner."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from waypost.template.output import write_if_changed


def test_writes_only_when_the_content_changes(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "out.conf"
    assert write_if_changed(str(dest), "a\n")
    inode = dest.stat().st_ino
    assert not write_if_changed(str(dest), "a\n")
    assert dest.stat().st_ino == inode
    assert write_if_changed(str(dest), "b\n")
    assert dest.read_text() == "b\n"
    assert dest.stat().st_ino != inode, "replaced by rename, not rewritten in place"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert [p.name for p in dest.parent.iterdir()] == ["out.conf"], "no temporary file left behind"


def test_keeps_an_existing_files_mode_unless_perms_are_given(tmp_path: Path) -> None:
    dest = tmp_path / "out.conf"
    dest.write_text("old")
    os.chmod(dest, 0o640)
    write_if_changed(str(dest), "new")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    write_if_changed(str(dest), "newer", perms=0o600)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_backup_and_append(tmp_path: Path) -> None:
    dest = tmp_path / "out.conf"
    dest.write_text("v1")
    write_if_changed(str(dest), "v2", backup=True)
    assert (tmp_path / "out.conf.bak").read_text() == "v1"
    write_if_changed(str(dest), "+", append=True)
    assert dest.read_text() == "v2+"


def test_no_dirs_created_when_disabled(tmp_path: Path) -> None:
    dest = tmp_path / "missing" / "out.conf"
    with pytest.raises(FileNotFoundError):
        write_if_changed(str(dest), "x", create_dirs=False)
    assert not dest.parent.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_keeps_an_existing_files_owner(tmp_path: Path) -> None:
    dest = tmp_path / "out.conf"
    dest.write_text("old")
    os.chown(dest, 65534, 65534)
    write_if_changed(str(dest), "new")
    assert (dest.stat().st_uid, dest.stat().st_gid) == (65534, 65534)
