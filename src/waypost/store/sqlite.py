"""The durable embedded store: the memory store's key space, made durable in SQLite.

Reads never touch the disk: the whole current key space lives in a ``Keyspace``, and
the database exists so that it survives a restart. Writes are applied in memory at
once (which orders them and keeps compares race-free), then queued for one writer
thread. The writer takes everything queued, writes it in one SQLite transaction and
commits once (a group commit), and only then are those writers answered and their
events shown to watchers, so nothing a client or watcher saw can be lost by a crash.

Reads may see a write whose commit is still in flight, as its writer has not been
answered yet; if a commit ever fails the store refuses further writes, because memory
is then ahead of the disk.

Watch history is not persisted: after a restart, watches may start only after the
restored revision, and older starts get ``CompactedError`` as after an etcd compaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from waypost.store.base import EventType, KeyValue, StoreError
from waypost.store.history import DEFAULT_HISTORY
from waypost.store.keyspace import Change, Keyspace
from waypost.store.local import Clock, LocalStore

log = logging.getLogger("waypost.store.sqlite")

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('revision', 1), ('last_lease', 0);
"""

_Pending = tuple[Change, "asyncio.Future[None]"]


class SqliteStore(LocalStore):
    """``commits`` counts SQLite transactions committed, which shows writes being batched."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.monotonic,
        history_limit: int = DEFAULT_HISTORY,
    ) -> None:
        self.path = Path(path)
        # synchronous=FULL makes every commit fsync the WAL: an acknowledged write
        # survives kill -9 and power loss alike.
        self._db = sqlite3.connect(self.path, timeout=0.1, isolation_level=None, check_same_thread=False)
        try:
            # One process owns the file: a second agent on the same data dir would fork history.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            keyspace = self._load(clock())
        except sqlite3.OperationalError as exc:
            self._db.close()
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        # Events up to the restored revision are gone; a fresh database has lost nothing.
        first = 1 if keyspace.revision == 1 else keyspace.revision + 1
        super().__init__(keyspace, clock=clock, first_available=first, history_limit=history_limit)
        self.commits = 0
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._failed: StoreError | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="waypost-sqlite")

    def _load(self, now: float) -> Keyspace:
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        keyspace = Keyspace(revision=meta["revision"], last_lease=meta["last_lease"])
        # Leases restart their TTL, as etcd's do after a restart.
        for lease_id, ttl in self._db.execute("SELECT id, ttl FROM leases"):
            keyspace.restore_lease(lease_id, ttl, now)
        rows = self._db.execute("SELECT key, value, create_rev, mod_rev, version, lease FROM kv")
        keyspace.load(kv for kv in map(_row, rows) if kv is not None)
        return keyspace

    async def _record(self, change: Change) -> None:
        if self._failed is not None:
            raise self._failed
        future = asyncio.get_running_loop().create_future()
        self._pending.append((change, future))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="sqlite-flush")
        await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await loop.run_in_executor(self._writer, self._commit, [c for c, _ in batch])
                except (sqlite3.Error, OSError) as exc:
                    self._fail(batch, StoreError(f"sqlite commit failed: {exc}"))
                    return
                self.commits += 1
                for change, future in batch:
                    self._publish(change)
                    if not future.done():
                        future.set_result(None)
        finally:
            self._flusher = None

    def _fail(self, batch: list[_Pending], error: StoreError) -> None:
        self._failed = error
        for _, future in [*batch, *self._pending]:
            if not future.done():
                future.set_exception(error)
        self._pending = []

    def _commit(self, changes: list[Change]) -> None:
        """Runs on the writer thread. Only each key's and lease's last state in the batch
        is written, since the batch commits atomically anyway."""
        kvs: dict[str, KeyValue | None] = {}
        leases: dict[int, float | None] = {}
        for change in changes:
            for event in change.events:
                kvs[event.kv.key] = event.kv if event.type is EventType.PUT else None
            leases.update(change.leases)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)
                    for kv in kvs.values()
                    if kv is not None
                ],
            )
            db.executemany("DELETE FROM kv WHERE key = ?", [(k,) for k, kv in kvs.items() if kv is None])
            db.executemany(
                "INSERT OR REPLACE INTO leases VALUES (?, ?)",
                [(i, ttl) for i, ttl in leases.items() if ttl is not None],
            )
            db.executemany("DELETE FROM leases WHERE id = ?", [(i,) for i, t in leases.items() if t is None])
            db.executemany(
                "UPDATE meta SET value = max(value, ?) WHERE name = ?",
                [(max(c.revision for c in changes), "revision"), (max(leases, default=0), "last_lease")],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        if self._closed:
            return
        await super().close()
        if self._flusher is not None:
            await self._flusher
        await asyncio.get_running_loop().run_in_executor(self._writer, self._db.close)
        self._writer.shutdown(wait=True)


def _row(row: tuple[object, ...]) -> KeyValue | None:
    """A stored row as the store's types; a row that was written by hand with other types
    (SQLite keeps whatever it is given) is coerced where that is lossless, else skipped
    with a warning, so that the server still starts."""
    key, value, *revisions = row
    if isinstance(key, bytes):
        try:
            key = key.decode()
        except UnicodeDecodeError:
            key = None
    if isinstance(value, str):
        value = value.encode()
    numbers = [r for r in revisions if isinstance(r, int) and not isinstance(r, bool)]
    if not isinstance(key, str) or not isinstance(value, bytes) or len(numbers) != 4:
        log.warning("skipping unreadable row in the kv table: key %r", row[0])
        return None
    create, mod, version, lease = numbers
    return KeyValue(key, value, create, mod, version, lease)
