"""Client agents join a single embedded (sqlite) server: a small deployment needs no etcd."""

from __future__ import annotations

import time
from pathlib import Path

from waypost.testing import AgentProcess


def test_client_agents_join_an_embedded_server(tmp_path: Path) -> None:
    server_args = [
        *("-server", "-bootstrap-expect", "1", "-data-dir", str(tmp_path / "s")),
        *("-bind", "127.0.0.1", "-node", "solo"),
    ]
    with AgentProcess(server_args, log_path=tmp_path / "s.log") as server:
        client_args = [
            *("-data-dir", str(tmp_path / "c"), "-bind", "127.0.0.1"),
            *("-node", "edge", "-retry-join", server.server_address),
        ]
        with AgentProcess(client_args, log_path=tmp_path / "c.log") as client:
            client.put("/v1/agent/service/register", {"Name": "edge-svc", "Port": 1})
            assert [e["Node"]["Node"] for e in server.get("/v1/health/service/edge-svc?passing")] == ["edge"]
            server.put("/v1/kv/from-server", b"hello")
            deadline = time.monotonic() + 5
            while (
                client.request("GET", "/v1/kv/from-server?raw")[2] != b"hello" and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            assert client.request("GET", "/v1/kv/from-server?raw")[2] == b"hello"
            members = {m["Name"]: m["Status"] for m in client.get("/v1/agent/members")}
            assert members == {"solo": 1, "edge": 1}
