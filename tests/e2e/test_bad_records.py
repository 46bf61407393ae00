"""Records the agent cannot decode, written behind its back into each store it runs on.

However such a record got there (an older version, a bug, a hand edit), the agent must
start, keep serving reads and writes, name the bad keys in its log and count them in
/v1/agent/metrics. (The in-memory store of ``-dev`` has no outside write path left: the
internal store API refuses records that do not decode, so the memory store is covered by
the state tests.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from etcd_cluster import etcd_available, etcd_cluster
from waypost.state.model import KVEntry
from waypost.state.schema import encode
from waypost.store import DATA_DIR_FILE
from waypost.store.base import Put
from waypost.testing import AgentProcess

GARBAGE = {
    "catalog/nodes/bad": msgspec.msgpack.encode({"Node": "bad", "TaggedAddresses": {"wan": 1}}),
    "catalog/services/nodeonly": msgspec.msgpack.encode({"ID": "nodeonly", "Service": "x"}),
    "kv/broken": b"\xc1 not msgpack",
}
AS_TEXT = {"kv/text": "a value stored as TEXT, which only SQLite can hold"}


def wait_for_log(path: Path, *needles: str, limit: float = 10.0) -> str:
    deadline = time.monotonic() + limit
    while True:
        text = path.read_text(errors="replace")
        if all(n in text for n in needles) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def metrics(agent: AgentProcess) -> tuple[dict[str, Any], dict[str, float], str]:
    body = agent.get("/v1/agent/metrics")
    counters = {c["Name"]: c for c in body["Counters"]}
    gauges = {g["Name"]: g["Value"] for g in body["Gauges"]}
    _, _, text = agent.request("GET", "/v1/agent/metrics?format=prometheus")
    return counters, gauges, text.decode()


def assert_serves_and_reports(agent: AgentProcess, log: Path, keys: list[str], *, at_start: bool) -> None:
    needle = f"skipping {len(keys)} undecodable records" if at_start else "quarantined undecodable record"
    text = wait_for_log(log, needle, *keys)
    assert needle in text
    for key in keys:
        assert key in text

    counters, gauges, prom = metrics(agent)
    assert counters["consul.state.decode_errors"]["Count"] == len(keys)
    assert gauges["consul.state.quarantined_keys"] == len(keys)
    assert f"# TYPE consul_state_decode_errors counter\nconsul_state_decode_errors {len(keys)}\n" in prom
    assert f"consul_state_quarantined_keys {float(len(keys))}" in prom

    assert "bad" not in [n["Node"] for n in agent.get("/v1/catalog/nodes")]
    assert agent.request("GET", "/v1/kv/broken")[0] == 404
    assert agent.put("/v1/catalog/register", {"Node": "fresh", "Address": "127.0.0.5"}) is True
    assert agent.get("/v1/catalog/node/fresh")["Node"]["Address"] == "127.0.0.5"
    assert agent.put("/v1/kv/after", b"still writing") is True
    assert agent.request("GET", "/v1/kv/after?raw")[2] == b"still writing"

    # A good write over a quarantined record replaces it and lifts the quarantine.
    assert agent.put("/v1/catalog/register", {"Node": "bad", "Address": "127.0.0.6"}) is True
    assert agent.get("/v1/catalog/node/bad")["Node"]["Address"] == "127.0.0.6"
    assert agent.put("/v1/kv/broken", b"mended") is True
    assert agent.request("GET", "/v1/kv/broken?raw")[2] == b"mended"
    _, gauges, _ = metrics(agent)
    assert gauges["consul.state.quarantined_keys"] == len(keys) - 2


def test_embedded_sqlite_server_starts_on_a_database_holding_garbage(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["-server", "-bootstrap-expect", "1", "-data-dir", str(data), "-node", "solo"]
    log = tmp_path / "agent.log"
    first = AgentProcess(args, log_path=log).start()
    try:
        assert first.put("/v1/kv/before", b"kept") is True
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            # The running server holds the file exclusively, so garbage can only go in while it is down.
            _write_rows(data / DATA_DIR_FILE, GARBAGE)
    finally:
        first.stop()

    rows: dict[str, bytes | str] = {**GARBAGE, **AS_TEXT}
    _write_rows(data / DATA_DIR_FILE, rows)
    # Keys stored as BLOBs: one that is UTF-8 is read as text, one that is not is skipped.
    _write_rows(data / DATA_DIR_FILE, {b"kv/blob-key": encode(KVEntry(Key="blob-key")), b"kv/\xff": b""})
    with AgentProcess(args, http_port=first.http_port, dns_port=first.dns_port, log_path=log) as second:
        assert second.request("GET", "/v1/kv/before?raw")[2] == b"kept"
        assert_serves_and_reports(second, log, sorted(rows), at_start=True)
        assert "skipping unreadable row in the kv table: key b'kv/\\xff'" in log.read_text()
        assert second.request("GET", "/v1/kv/blob-key")[0] == 200
        # Deleting a quarantined record removes it, though it reads as absent.
        assert second.request("DELETE", "/v1/kv/text")[2] == b"true"
        assert metrics(second)[1]["consul.state.quarantined_keys"] == len(rows) - 3


def _write_rows(db_path: Path, rows: Mapping[str | bytes, bytes | str]) -> None:
    db = sqlite3.connect(db_path, timeout=0.2, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        (revision,) = db.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()
        db.executemany(
            "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, 1, 0)",
            [(key, value, revision + 1, revision + 1) for key, value in rows.items()],
        )
        db.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision + 1,))
        db.execute("COMMIT")
    finally:
        db.close()


@pytest.mark.etcd
@pytest.mark.skipif(not etcd_available(), reason="etcd-server is not installed")
def test_server_on_etcd_survives_garbage_written_straight_into_etcd(tmp_path: Path) -> None:
    from waypost.store.etcd import EtcdStore

    async def write_garbage(endpoints: list[str]) -> None:
        store = EtcdStore(endpoints)
        try:
            await store.txn([], [Put(k, v) for k, v in GARBAGE.items()])
        finally:
            await store.close()

    (tmp_path / "etcd").mkdir()
    with etcd_cluster(tmp_path / "etcd") as etcd:
        args = [
            *("-server", "-store", etcd.url, "-bind", "127.0.0.1", "-node", "server-1"),
            *("-data-dir", str(tmp_path / "server")),
        ]
        log = tmp_path / "agent.log"
        agent = AgentProcess(args, log_path=log).start(30)
        try:
            asyncio.run(write_garbage(etcd.endpoints))
            assert_serves_and_reports(agent, log, sorted(GARBAGE), at_start=False)
            # A key that is not UTF-8 (etcd keys are bytes) is ignored; later writes still apply.
            put = {"key": base64.b64encode(b"kv/\xff").decode(), "value": base64.b64encode(b"x").decode()}
            request = urllib.request.Request(
                f"http://{etcd.endpoints[0]}/v3/kv/put", json.dumps(put).encode()
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                assert answer.status == 200
            assert agent.put("/v1/kv/after-bytes-key", b"ok") is True
            assert "etcd key b'kv/\\xff' is not UTF-8; it is ignored" in log.read_text()
        finally:
            agent.stop()
        # Restarted on the same etcd, it re-lists the one record still bad.
        again = AgentProcess(args, log_path=log).start(30)
        try:
            text = wait_for_log(log, "skipping 1 undecodable records: catalog/services/nodeonly")
            assert "skipping 1 undecodable records: catalog/services/nodeonly" in text
            assert again.get("/v1/catalog/node/bad")["Node"]["Address"] == "127.0.0.6"
            assert again.put("/v1/kv/after-restart", b"ok") is True
        finally:
            again.stop()
