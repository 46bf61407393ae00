"""``waypost snapshot save|restore|inspect``: Consul's disaster-recovery commands over /v1/snapshot."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import IO

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from, client_or_report
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.cli.group import Subcommand, dispatch
from waypost.state.snapshot import Snapshot, SnapshotError, decode

SAVE_USAGE = """
Usage: waypost snapshot save [options] FILE

  Retrieves an atomic, point-in-time snapshot of the state of the servers which
  includes key/value entries, service catalog, sessions and coordinates.

  To create a snapshot from the leader server and save it to "backup.snap":

      $ waypost snapshot save backup.snap

  To create a potentially stale snapshot from any available server (useful if no
  leader is available):

      $ waypost snapshot save -stale backup.snap
"""

RESTORE_USAGE = """
Usage: waypost snapshot restore [options] FILE

  Restores an atomic, point-in-time snapshot of the state of the servers which
  includes key/value entries, service catalog, sessions and coordinates.

  The file is verified completely before anything is written: a truncated,
  corrupted or foreign file is refused and the servers' state is left as it was.

  To restore a snapshot from the file "backup.snap":

      $ waypost snapshot restore backup.snap
"""

INSPECT_USAGE = """
Usage: waypost snapshot inspect [options] FILE

  Displays information about a snapshot file on disk.

  To inspect the file "backup.snap":

      $ waypost snapshot inspect backup.snap
"""


def _file_arg(opts: Parsed) -> str | None:
    """Consul's FILE argument checks, shared by all three subcommands."""
    if not opts.args:
        ui.error("Missing FILE argument")
        return None
    if len(opts.args) > 1:
        ui.error(f"Too many arguments (expected 1, got {len(opts.args)})")
        return None
    return opts.args[0]


def _save(opts: Parsed) -> int:
    path = _file_arg(opts)
    if path is None:
        return 1
    try:
        resp = client_from(opts).get("/v1/snapshot")
    except ClientError as exc:
        ui.error(f"Error saving snapshot: {exc}")
        return 1
    unverified = path + ".unverified"
    try:
        fd = os.open(unverified, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(resp.body)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        ui.error(f"Error writing unverified snapshot file: {exc}")
        return 1
    try:
        try:
            with open(unverified, "rb") as f:
                decode(f)
        except (OSError, SnapshotError) as exc:
            ui.error(f"Error verifying snapshot file: {exc}")
            return 1
        try:
            os.replace(unverified, path)
        except OSError as exc:
            ui.error(f"Error renaming {unverified!r} to {path!r}: {exc}")
            return 1
    finally:
        if os.path.exists(unverified):
            os.remove(unverified)
    ui.output(f"Saved and verified snapshot to index {resp.index}")
    return 0


def _restore(opts: Parsed) -> int:
    path = _file_arg(opts)
    if path is None:
        return 1
    client = client_or_report(opts)
    if client is None:
        return 1
    snapshot = _open(path)
    if snapshot is None:
        return 1
    try:
        with snapshot:
            client.put("/v1/snapshot", body=snapshot)
    except ClientError as exc:
        ui.error(f"Error restoring snapshot: {exc}")
        return 1
    ui.output("Restored snapshot")
    return 0


def _byte_size(size: int) -> str:
    """Consul's ByteSize: one decimal, ``.0`` dropped, binary units."""
    if size == 0:
        return "0"
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + unit
    return f"{size}B"


def _pretty(snap: Snapshot) -> str:
    meta = snap.meta
    head = ui.tabwrite(
        [
            [" ID", meta.ID],
            [" Size", str(meta.Size)],
            [" Index", str(meta.Index)],
            [" Term", str(meta.Term)],
            [" Version", str(meta.Version)],
        ]
    )
    stats = snap.stats()
    dashes = [" ----", "----", "----", ""]
    rows = [[" Type", "Count", "Size", ""], dashes]
    rows += [[f" {name}", str(count), _byte_size(size), ""] for name, count, size in stats]
    rows += [dashes, [" Total", "", _byte_size(sum(s for _, _, s in stats)), ""]]
    return f"{head}\n\n{ui.tabwrite(rows)}"


def _json(snap: Snapshot) -> str:
    meta = snap.meta
    stats = snap.stats()
    body = {
        "Meta": {
            "ID": meta.ID,
            "Size": meta.Size,
            "Index": meta.Index,
            "Term": meta.Term,
            "Version": meta.Version,
        },
        "Stats": [{"Name": n, "Sum": s, "Count": c} for n, c, s in stats],
        "StatsKV": None,
        "TotalSize": sum(s for _, _, s in stats),
        "TotalSizeKV": 0,
    }
    return json.dumps(body, indent=3)


def _inspect(opts: Parsed) -> int:
    fmt = opts.string("format")
    if fmt not in ("pretty", "json"):
        ui.error(f"Error outputting enhanced snapshot data: Unknown format: {fmt}")
        return 1
    path = _file_arg(opts)
    if path is None:
        return 1
    snapshot = _open(path)
    if snapshot is None:
        return 1
    try:
        with snapshot:
            snap = decode(snapshot)
    except SnapshotError as exc:
        ui.error(f"Error reading snapshot: {exc}")
        return 1
    ui.output(_pretty(snap) if fmt == "pretty" else _json(snap))
    return 0


def _inspect_flags() -> FlagSet:
    fs = FlagSet(INSPECT_USAGE, http=False, server=False)
    fs.string("format", "pretty", "Output format {pretty|json}", "string")
    return fs


SUBCOMMANDS: dict[str, Subcommand] = {
    "save": (lambda a: run_with_flags(FlagSet(SAVE_USAGE), a, _save), "Saves snapshot of server state"),
    "restore": (
        lambda a: run_with_flags(FlagSet(RESTORE_USAGE), a, _restore),
        "Restores snapshot of server state",
    ),
    "inspect": (
        lambda a: run_with_flags(_inspect_flags(), a, _inspect),
        "Displays information about a snapshot file",
    ),
}


def run(argv: Sequence[str]) -> int:
    return dispatch(
        "snapshot",
        "Saves, restores and inspects snapshots of the servers' state for disaster recovery.",
        SUBCOMMANDS,
        argv,
    )


def _open(path: str) -> IO[bytes] | None:
    """The snapshot file, read as a stream (a snapshot may be larger than memory), or None
    once Consul's error line is printed."""
    try:
        return open(path, "rb")
    except OSError as exc:
        ui.error(f"Error opening snapshot file: {exc}")
        return None
