"""The etcd store across a three-member cluster: calls and watches survive losing a member."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from etcd_cluster import etcd_available, etcd_cluster
from waypost.store.etcd import EtcdStore

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd is not installed"),
]


async def test_calls_and_watch_fail_over_to_another_member(tmp_path: Path) -> None:
    with etcd_cluster(tmp_path, members=3) as cluster:
        store = EtcdStore(cluster.endpoints)
        try:
            first = await store.put("k/before", b"1")
            stream = store.watch("k/", first)
            [event] = await asyncio.wait_for(anext(stream), 10)
            assert event.kv.key == "k/before"

            # The store talks to the first endpoint until it fails.
            cluster.members[0].kill()
            revision = await store.put("k/after", b"2")
            assert revision == first + 1
            [event] = await asyncio.wait_for(anext(stream), 20)
            assert (event.kv.key, event.kv.mod_revision) == ("k/after", revision)
            await stream.aclose()  # type: ignore[attr-defined]
        finally:
            await store.close()
