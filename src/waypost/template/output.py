"""Writing rendered files: atomically, only when the content changed, keeping the
destination's permissions and owner, with an optional ``.bak`` of the previous version.

A reader (haproxy reloading, nginx -t) never sees a half-written file: the text goes to a
temporary file in the same directory, is flushed to disk and renamed over the old one.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import tempfile

__all__ = ["DEFAULT_PERMS", "write_if_changed"]

DEFAULT_PERMS = 0o644


def _owner(user: str, group: str) -> tuple[int, int]:
    uid = gid = -1
    if user:
        try:
            uid = pwd.getpwnam(user).pw_uid
        except KeyError:
            if not user.isdigit():
                raise ValueError(f"user: unknown user {user}") from None
            uid = int(user)
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            if not group.isdigit():
                raise ValueError(f"group: unknown group {group}") from None
            gid = int(group)
    return uid, gid


def write_if_changed(
    path: str,
    content: str,
    *,
    perms: int | None = None,
    backup: bool = False,
    create_dirs: bool = True,
    user: str = "",
    group: str = "",
    append: bool = False,
) -> bool:
    """Write ``content`` to ``path`` unless it already holds exactly that; True if written.

    Raises OSError (or ValueError for an unknown user/group) without touching the file.
    """
    data = content.encode()
    try:
        st: os.stat_result | None = os.stat(path)
        with open(path, "rb") as f:
            existing = f.read()
    except FileNotFoundError:
        st, existing = None, None
    if append:
        data = (existing or b"") + data
    if existing == data:
        return False
    directory = os.path.dirname(os.path.abspath(path))
    if create_dirs:
        os.makedirs(directory, exist_ok=True)
    mode = perms if perms is not None else (st.st_mode & 0o7777 if st else DEFAULT_PERMS)
    uid, gid = _owner(user, group)
    if st is not None:
        uid = st.st_uid if uid < 0 else uid
        gid = st.st_gid if gid < 0 else gid
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if uid >= 0 or gid >= 0:
            with contextlib.suppress(PermissionError):
                os.chown(tmp, uid, gid)
        if backup and st is not None:
            shutil.copy2(path, path + ".bak")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True
