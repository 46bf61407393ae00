"""A server agent on the embedded sqlite store keeps every acknowledged write across kill -9."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from waypost.testing import AgentProcess


def test_acknowledged_kv_writes_survive_kill_9(tmp_path: Path) -> None:
    args = ["-server", "-bootstrap-expect", "1", "-data-dir", str(tmp_path / "data"), "-node", "durable"]
    first = AgentProcess(args, log_path=tmp_path / "agent.log").start()
    acked: dict[str, int] = {}
    try:
        for i in range(1000):
            assert first.put(f"/v1/kv/durable/{i:04d}", f"value-{i}".encode()) is True
        _, headers, body = first.request("GET", "/v1/kv/durable/?recurse")
        acked = {e["Key"]: e["ModifyIndex"] for e in json.loads(body)}
        index_before = int(headers["X-Consul-Index"])
    finally:
        first.kill(signal.SIGKILL)
    assert len(acked) == 1000

    with AgentProcess(
        args, http_port=first.http_port, dns_port=first.dns_port, log_path=tmp_path / "agent.log"
    ) as second:
        _, headers, body = second.request("GET", "/v1/kv/durable/?recurse")
        entries = json.loads(body)
        assert {e["Key"]: e["ModifyIndex"] for e in entries} == acked
        assert entries[7]["Value"] is not None
        assert int(headers["X-Consul-Index"]) == index_before
        assert second.put("/v1/kv/durable/after", b"x") is True
        _, headers, _ = second.request("GET", "/v1/kv/durable/after")
        assert int(headers["X-Consul-Index"]) > index_before
