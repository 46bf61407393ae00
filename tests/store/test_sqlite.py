"""What only the sqlite store promises: acknowledged writes survive kill -9 and restarts,
and concurrent writers share commits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import waypost
from waypost.store import DATA_DIR_FILE, open_store
from waypost.store.base import CompactedError, LeaseNotFoundError, StoreError
from waypost.store.sqlite import SqliteStore

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from waypost.store.sqlite import SqliteStore

    async def main():
        store = SqliteStore(sys.argv[1])
        for i in range(1000):
            revision = await store.put(f"k/{i:04d}", str(i).encode())
            print(f"ack k/{i:04d} {revision}", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def test_acknowledged_puts_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    env = {**os.environ, "PYTHONPATH": str(Path(waypost.__file__).resolve().parent.parent)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert writer.stdout is not None
    acks: dict[str, int] = {}
    try:
        for line in writer.stdout:
            _, key, revision = line.split()
            acks[key] = int(revision)
            if len(acks) == 500:
                break
    finally:
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate(timeout=30)
    for line in rest.splitlines():
        _, key, revision = line.split()
        acks[key] = int(revision)
    assert len(acks) >= 500

    async def check() -> None:
        store = SqliteStore(db)
        try:
            for key, revision in acks.items():
                kv = await store.get(key)
                assert kv is not None, key
                assert (kv.mod_revision, kv.create_revision, kv.version) == (revision, revision, 1)
            assert await store.revision() >= max(acks.values())
        finally:
            await store.close()

    asyncio.run(check())


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    try:
        revisions = await asyncio.gather(*(store.put(f"k/{i}", b"x") for i in range(200)))
        assert sorted(revisions) == list(range(2, 202))
        assert 1 <= store.commits < 200
    finally:
        await store.close()


async def test_restart_restores_keys_revision_and_leases(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    lease = await store.lease_grant(60)
    created = await store.put("kept", b"1")
    modified = await store.put("kept", b"2")
    await store.put("leased", b"x", lease=lease)
    await store.put("deleted", b"x")
    _, revision = await store.delete("deleted")
    await store.close()

    store = SqliteStore(path)
    try:
        assert await store.revision() == revision
        kept = await store.get("kept")
        assert kept is not None
        assert (kept.create_revision, kept.mod_revision, kept.version) == (created, modified, 2)
        assert await store.get("deleted") is None
        assert await store.lease_keepalive(lease) == 60
        assert await store.lease_grant(60) > lease
        with pytest.raises(CompactedError):
            await anext(store.watch("", revision))
        stream = store.watch("", revision + 1)
        await store.lease_revoke(lease)
        [event] = await asyncio.wait_for(anext(stream), 10)
        assert event.kv.key == "leased"
        await stream.aclose()  # type: ignore[attr-defined]
    finally:
        await store.close()

    store = SqliteStore(path)
    try:
        assert await store.get("leased") is None
        with pytest.raises(LeaseNotFoundError):
            await store.lease_keepalive(lease)
    finally:
        await store.close()


async def test_open_store_accepts_a_data_directory(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}")
    assert isinstance(store, SqliteStore)
    await store.put("k", b"v")
    await store.close()
    assert (tmp_path / DATA_DIR_FILE).exists()


async def test_a_second_store_cannot_open_the_same_file(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    try:
        await store.put("k", b"v")
        with pytest.raises(StoreError):
            SqliteStore(tmp_path / "store.db")
    finally:
        await store.close()
