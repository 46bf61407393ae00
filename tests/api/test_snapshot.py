"""/v1/snapshot on real agents: the SQLite-backed server and, with etcd installed, an etcd-backed one.

Each backend gets the same story: populate, save, change everything, restore, and find the
saved records again; then every kind of bad file is refused with 400 and changes nothing.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import random
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import consul
import pytest

from etcd_cluster import etcd_available, etcd_cluster
from waypost.testing import AgentProcess

NODE = "snap-node"
EXTERNAL = {
    "Node": "db-1",
    "Address": "10.1.0.5",
    "NodeMeta": {"rack": "r2"},
    "Service": {"ID": "db", "Service": "postgres", "Port": 5432, "Tags": ["primary"]},
    "Check": {"CheckID": "db-alive", "Name": "db alive", "Status": "passing", "ServiceID": "db"},
}
MANY_KEYS = 150
"""More KV keys than etcd's default --max-txn-ops (128), so one restore path splits it."""


def _server(kind: str, base: Path) -> Iterator[AgentProcess]:
    args = ["-server", "-node", NODE, "-bind", "127.0.0.1", "-data-dir", str(base / "data")]
    if kind == "sqlite":
        with AgentProcess([*args, "-bootstrap-expect", "1"], log_path=base / "agent.log") as agent:
            yield agent
        return
    (base / "etcd").mkdir()
    with (
        etcd_cluster(base / "etcd") as etcd,
        AgentProcess([*args, "-store", etcd.url], log_path=base / "agent.log") as agent,
    ):
        yield agent


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param(
            "etcd",
            marks=[
                pytest.mark.etcd,
                pytest.mark.skipif(not etcd_available(), reason="etcd is not installed"),
            ],
        ),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    yield from _server(request.param, tmp_path_factory.mktemp(request.param))


def records(agent: AgentProcess) -> dict[str, Any]:
    """Every record a snapshot restores, decoded, with its CreateIndex and ModifyIndex."""
    _, _, kv = agent.request("GET", "/v1/kv/?recurse")
    return {
        "kv": json.loads(kv) if kv else [],
        "sessions": agent.get("/v1/session/list"),
        "node": agent.get("/v1/catalog/node/db-1"),
        "checks": agent.get("/v1/health/node/db-1"),
        "nodes": sorted(n["Node"] for n in agent.get("/v1/catalog/nodes")),
    }


def index(agent: AgentProcess) -> int:
    _, headers, _ = agent.request("GET", "/v1/kv/?recurse")
    return int(headers["X-Consul-Index"])


def save(agent: AgentProcess, query: str = "") -> tuple[bytes, int]:
    status, headers, body = agent.request("GET", "/v1/snapshot" + query)
    assert status == 200, body
    assert headers["Content-Type"] == "application/x-gzip"
    return body, int(headers["X-Consul-Index"])


def populate(agent: AgentProcess) -> tuple[str, str]:
    agent.put("/v1/catalog/register", EXTERNAL)
    agent.put("/v1/kv/app/config?flags=42", b"v1")
    agent.put("/v1/kv/app/binary", b"\x00\xff\x10")
    for i in range(MANY_KEYS):
        agent.put(f"/v1/kv/bulk/{i:03d}", str(i).encode())
    ttl = agent.put("/v1/session/create", {"Name": "ttl", "TTL": "60s", "Behavior": "delete"})["ID"]
    plain = agent.put("/v1/session/create", {"Name": "plain", "LockDelay": "1s"})["ID"]
    assert agent.put(f"/v1/kv/locks/leader?acquire={ttl}", b"me") is True
    assert agent.put(f"/v1/kv/locks/other?acquire={plain}", b"them") is True
    return ttl, plain


def scramble(agent: AgentProcess, ttl: str) -> None:
    """Change every kind of record the snapshot holds."""
    agent.put("/v1/kv/app/config?flags=1", b"v2")
    agent.request("DELETE", "/v1/kv/bulk/?recurse")
    agent.put("/v1/kv/added-later", b"x")
    agent.put(f"/v1/session/destroy/{ttl}")
    agent.put("/v1/catalog/deregister", {"Node": "db-1"})
    agent.put("/v1/catalog/register", {"Node": "web-9", "Address": "10.9.9.9"})


def test_restore_brings_back_exactly_the_saved_records(server: AgentProcess) -> None:
    ttl, plain = populate(server)
    saved = records(server)
    snap, snap_index = save(server, "?stale")
    assert snap_index >= index(server)

    scramble(server, ttl)
    changed = records(server)
    assert changed != saved
    before = index(server)

    woke: list[int] = []

    def block() -> None:
        _, headers, _ = server.request("GET", f"/v1/kv/app/config?index={before}&wait=20s")
        woke.append(int(headers["X-Consul-Index"]))

    waiter = threading.Thread(target=block)
    waiter.start()
    status, _, body = server.request("PUT", "/v1/snapshot", snap)
    assert (status, body) == (200, b"")
    waiter.join(30)
    assert woke, "the blocking query did not return"
    assert woke[0] > before, "a blocking query must wake with a higher index"

    assert records(server) == saved  # CreateIndex and ModifyIndex included, as Consul keeps them
    restored = index(server)
    assert restored > before
    kv = {e["Key"]: e for e in server.get("/v1/kv/?recurse")}
    assert kv["app/config"]["Flags"] == 42
    assert kv["locks/leader"]["Session"] == ttl
    assert kv["locks/other"]["Session"] == plain
    config = kv["app/config"]
    assert config["ModifyIndex"] < before
    # X-Consul-Index is a revision the restore wrote: never back, and a query on it parks.
    status, headers, _ = server.request("GET", "/v1/kv/app/config")
    reported = int(headers["X-Consul-Index"])
    assert before < reported <= restored
    started = time.monotonic()
    status, headers, _ = server.request("GET", f"/v1/kv/app/config?index={reported}&wait=1s")
    assert (status, int(headers["X-Consul-Index"])) == (200, reported)
    assert time.monotonic() - started >= 1.0, "a blocking query on the index returned must park"
    # cas on the ModifyIndex shown: a wrong one fails, the shown one holds, CreateIndex stays.
    assert server.put(f"/v1/kv/app/config?cas={reported}", b"v3") is False
    assert server.put(f"/v1/kv/app/config?cas={config['ModifyIndex']}", b"v3") is True
    [after] = server.get("/v1/kv/app/config")
    assert after["CreateIndex"] == config["CreateIndex"]
    assert after["ModifyIndex"] > restored
    # The restored TTL session lives on a fresh lease: it renews, and destroying it
    # applies its Behavior to the lock it holds.
    assert server.put(f"/v1/session/renew/{ttl}")[0]["ID"] == ttl
    assert server.put(f"/v1/session/destroy/{ttl}") is True
    assert server.request("GET", "/v1/kv/locks/leader")[0] == 404


def _tamper(snap: bytes) -> bytes:
    """The same archive with one byte of state.bin flipped and the old checksums kept."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(gzip.decompress(snap))) as src,
        tarfile.open(fileobj=out, mode="w") as dst,
    ):
        for member in src:
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "state.bin":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(member, io.BytesIO(data))
    return gzip.compress(out.getvalue())


def _foreign_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("backup.sql")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return out.getvalue()


def test_bad_files_are_refused_and_change_nothing(server: AgentProcess) -> None:
    server.put("/v1/kv/keep/me", b"intact")
    snap, _ = save(server)
    before, index_before = records(server), index(server)
    bad = {
        "truncated": (snap[: len(snap) // 2], "failed to read snapshot file: unexpected EOF"),
        "checksum": (_tamper(snap), 'hash check failed for "state.bin"'),
        "foreign tar": (_foreign_tar(), 'unexpected file "backup.sql" in snapshot'),
        "random bytes": (random.Random(7).randbytes(2048), "failed to decompress snapshot"),
        "gzipped noise": (gzip.compress(random.Random(8).randbytes(2048)), "failed to read snapshot file"),
        "empty": (b"", "failed to decompress snapshot"),
    }
    for name, (body, message) in bad.items():
        status, headers, answer = server.request("PUT", "/v1/snapshot", body)
        assert status == 400, name
        assert headers["Content-Type"].startswith("text/plain"), name
        assert message in answer.decode(), (name, answer)
    assert records(server) == before
    assert index(server) == index_before


def test_py_consul_saves_and_restores(server: AgentProcess) -> None:
    c = consul.Consul(host="127.0.0.1", port=server.http_port)
    c.kv.put("pyconsul/key", "saved")
    snap = c.snapshot.save(stale=True)
    c.kv.put("pyconsul/key", "changed")
    assert c.snapshot.restore(snap) is True
    assert c.kv.get("pyconsul/key")[1]["Value"] == b"saved"


def test_a_restore_on_sqlite_survives_a_restart(tmp_path: Path) -> None:
    args = ["-server", "-bootstrap-expect", "1", "-node", NODE, "-data-dir", str(tmp_path / "data")]
    first = AgentProcess(args, log_path=tmp_path / "agent.log").start()
    try:
        first.put("/v1/kv/durable", b"saved")
        snap, _ = save(first)
        first.put("/v1/kv/durable", b"changed")
        assert first.request("PUT", "/v1/snapshot", snap)[0] == 200
        restored = records(first)
    finally:
        first.stop()
    with AgentProcess(args, http_port=first.http_port, log_path=tmp_path / "agent.log") as second:
        assert records(second) == restored
        assert second.request("GET", "/v1/kv/durable?raw")[2] == b"saved"


def test_a_client_agent_saves_and_restores_through_its_server(tmp_path: Path) -> None:
    """A client agent relays a snapshot's save and restore to its server, the restore's
    spooled body whole: a large restore through it lands whole."""
    server_args = ["-server", "-bootstrap-expect", "1", "-bind", "127.0.0.1", "-node", "hub"]
    with AgentProcess(
        [*server_args, "-data-dir", str(tmp_path / "s")], log_path=tmp_path / "s.log"
    ) as server:
        client_args = ["-bind", "127.0.0.1", "-node", "edge", "-retry-join", server.server_address]
        with AgentProcess(
            [*client_args, "-data-dir", str(tmp_path / "c")], log_path=tmp_path / "c.log"
        ) as client:
            for i in range(MANY_KEYS):
                client.put(f"/v1/kv/bulk/{i:03d}", str(i).encode())
            snap, _ = save(client)
            client.request("DELETE", "/v1/kv/bulk/?recurse")
            assert client.request("PUT", "/v1/snapshot", snap)[0] == 200
            assert len(server.get("/v1/kv/bulk/?keys")) == MANY_KEYS


def test_a_restore_is_not_capped_by_the_body_limit(tmp_path: Path) -> None:
    """Consul takes a snapshot of any size; every other body stays capped. The cap is set
    small rather than the snapshot made huge."""
    cap = 4096
    config = tmp_path / "small-bodies.json"
    limits = {"kv_max_value_size": cap, "txn_max_req_len": cap}
    config.write_text(json.dumps({"http_config": {"max_body_bytes": cap}, "limits": limits}))
    args = ["-dev", "-node", NODE, "-config-file", str(config)]
    with AgentProcess(args, log_path=tmp_path / "agent.log") as agent:
        values = {f"big/{i:02d}": random.Random(i).randbytes(cap) for i in range(16)}
        for key, value in values.items():
            agent.put(f"/v1/kv/{key}", value)
        snap, _ = save(agent)
        assert len(snap) > 10 * cap
        assert agent.request("PUT", "/v1/kv/other", bytes(2 * cap))[0] == 413
        agent.request("DELETE", "/v1/kv/big/?recurse")
        before = index(agent)

        status, _, answer = agent.request("PUT", "/v1/snapshot", snap[:-cap])
        assert (status, index(agent)) == (400, before), answer
        assert b"unexpected EOF" in answer

        # Chunked, as a client streaming a file sends it.
        conn = http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=30)
        parts = (snap[i : i + cap] for i in range(0, len(snap), cap))
        conn.request("PUT", "/v1/snapshot", body=parts, encode_chunked=True)
        assert conn.getresponse().status == 200
        conn.close()
        assert {key: agent.request("GET", f"/v1/kv/{key}?raw")[2] for key in values} == values
