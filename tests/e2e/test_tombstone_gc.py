"""KV tombstones are reaped by the leader after ``tombstone_gc.ttl``, and a prefix's blocking
index never goes backwards because of it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from waypost.testing import AgentProcess

SHORT_GC = 'tombstone_gc { ttl = "1s" granularity = "100ms" }'


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = tmp_path_factory.mktemp("gc") / "agent.log"
    with AgentProcess(["-dev", "-node", "gc", "-hcl", SHORT_GC], log_path=log) as running:
        yield running


def gauge(agent: AgentProcess, name: str) -> float:
    values = {g["Name"]: g["Value"] for g in agent.get("/v1/agent/metrics")["Gauges"]}
    return float(values[name])


def index_of(agent: AgentProcess, path: str) -> int:
    _, headers, _ = agent.request("GET", path)
    return int(headers["X-Consul-Index"])


def test_deleted_keys_are_reaped_and_prefix_indexes_hold(agent: AgentProcess) -> None:
    agent.put("/v1/kv/app/a", b"1")
    agent.put("/v1/kv/app/b", b"2")
    agent.request("DELETE", "/v1/kv/app/b")
    agent.put("/v1/kv/elsewhere", b"x")
    prefix_before = index_of(agent, "/v1/kv/app/?recurse")
    key_before = index_of(agent, "/v1/kv/app/b")
    assert gauge(agent, "consul.kvs.tombstones") == 1

    deadline = time.monotonic() + 15
    while gauge(agent, "consul.kvs.tombstones") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gauge(agent, "consul.kvs.tombstones") == 0

    prefix_after = index_of(agent, "/v1/kv/app/?recurse")
    assert prefix_after >= prefix_before
    assert index_of(agent, "/v1/kv/app/b") >= key_before

    # A blocking query on the prefix still parks, and still wakes on the next write.
    woke: dict[str, tuple[int, list[str]]] = {}

    def block() -> None:
        _, headers, body = agent.request("GET", f"/v1/kv/app/?recurse&index={prefix_after}&wait=20s")
        woke["answer"] = (int(headers["X-Consul-Index"]), [e["Key"] for e in json.loads(body)])

    thread = threading.Thread(target=block)
    thread.start()
    time.sleep(0.3)
    assert "answer" not in woke
    agent.put("/v1/kv/app/c", b"3")
    thread.join(25)
    index, keys = woke["answer"]
    assert index > prefix_after
    assert keys == ["app/a", "app/c"]


def test_a_non_positive_ttl_is_refused_at_start(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    refused = AgentProcess(["-dev", "-hcl", 'tombstone_gc { ttl = "0s" }'], log_path=log)
    try:
        with pytest.raises(RuntimeError, match="exited"):
            refused.start()
    finally:
        refused.stop()
    assert "tombstone_gc.ttl: cannot be 0s. Must be positive" in log.read_text()
