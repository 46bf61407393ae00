"""An embedded server restarts after any sequence of API calls: random valid and invalid calls, then
SIGKILL, then a restart on the same data directory that must succeed and serve the same state."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path
from typing import Any

import pytest

from waypost.testing import AgentProcess

NODE = "abuser"
"""The agent's own node is left out of the comparison: its serfHealth and sync are its own business."""

HOSTILE: list[tuple[str, str, Any]] = [
    ("PUT", "/v1/catalog/register", {"Node": "n-bad", "Address": "1.2.3.4", "TaggedAddresses": {"wan": 1}}),
    ("PUT", "/v1/catalog/register", {"Node": "n-bad", "Address": "1.2.3.4", "NodeMeta": {"k": 1}}),
    ("PUT", "/v1/catalog/register", {"Node": "n-bad", "Address": "a", "Service": {"Name": "s", "Port": -1}}),
    ("PUT", "/v1/catalog/register", {"Node": "n-bad", "Address": "a", "Check": {"CheckID": 5}}),
    ("PUT", "/v1/catalog/register", {"Node": "a/b", "Address": "a"}),
    ("PUT", "/v1/agent/service/register", {"Name": "s", "Check": {"TTL": "99999999999999999999h"}}),
    ("PUT", "/v1/agent/service/register", {"Name": "s", "Checks": [{"TTL": "10s"}, {"Interval": 1}]}),
    ("PUT", "/v1/agent/check/register", {"Name": "c", "TTL": 10**30}),
    ("PUT", "/v1/session/create", {"Node": NODE, "ServiceChecks": [1, 2]}),
    ("PUT", "/v1/session/create", {"Name": {"x": 1}}),
    ("PUT", "/v1/kv/k?flags=%2B5", b"x"),
    ("PUT", "/v1/kv/k?cas=18446744073709551616", b"x"),
    ("PUT", "/v1/txn", [{"KV": {"Verb": "set", "Key": "k", "Value": "eA==", "Flags": 2**65}}]),
    ("PUT", "/v1/catalog/register", b"[" * 5000),
]  # fmt: skip


def _valid_call(rng: random.Random, sessions: list[str]) -> tuple[str, str, Any]:
    n = rng.randrange(8)
    node = f"n{rng.randrange(6)}"
    if n == 0:
        return "PUT", f"/v1/kv/abuse/{rng.randrange(40)}", rng.randbytes(rng.randrange(1, 64))
    if n == 1:
        return "DELETE", f"/v1/kv/abuse/{rng.randrange(40)}", None
    if n == 2:
        return "PUT", "/v1/catalog/register", {
            "Node": node,
            "Address": f"127.0.1.{rng.randrange(1, 250)}",
            "TaggedAddresses": {"wan": "127.0.2.1"},
            "NodeMeta": {"rack": f"r{rng.randrange(3)}"},
            "Service": {"Service": f"svc{rng.randrange(4)}", "Port": rng.randrange(1, 65535), "Tags": ["t"]},
            "Check": {"CheckID": "c1", "Status": rng.choice(["passing", "warning", "critical"])},
        }  # fmt: skip
    if n == 3:
        return "PUT", "/v1/catalog/deregister", {"Node": node, "ServiceID": f"svc{rng.randrange(4)}"}
    if n == 4:
        return "PUT", "/v1/session/create", {"Node": "n0", "NodeChecks": [], "Name": f"s{rng.randrange(99)}"}
    if n == 5 and sessions:
        return "PUT", f"/v1/kv/locks/{rng.randrange(5)}?acquire={rng.choice(sessions)}", b"held"
    if n == 6 and sessions:
        return "PUT", f"/v1/session/destroy/{sessions.pop(rng.randrange(len(sessions)))}", None
    return (
        "PUT",
        "/v1/txn",
        [
            {"KV": {"Verb": "set", "Key": f"txn/{rng.randrange(9)}", "Value": "dHhu"}},
            {"KV": {"Verb": "delete", "Key": f"txn/{rng.randrange(9)}"}},
        ],
    )


def _state(agent: AgentProcess) -> dict[str, Any]:
    def get(path: str) -> Any:
        status, _, body = agent.request("GET", path)
        return json.loads(body) if status == 200 else status

    nodes = [n for n in get("/v1/catalog/nodes") if n["Node"] != NODE]
    return {
        "kv": get("/v1/kv/?recurse"),
        "nodes": nodes,
        "node_services": {n["Node"]: get(f"/v1/catalog/node-services/{n['Node']}") for n in nodes},
        "checks": {n["Node"]: get(f"/v1/health/node/{n['Node']}") for n in nodes},
        "sessions": sorted(get("/v1/session/list"), key=lambda s: s["ID"]),
        "services": get("/v1/agent/services"),
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_restart_after_random_valid_and_invalid_calls(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    args = ["-server", "-bootstrap-expect", "1", "-data-dir", str(tmp_path / "data"), "-node", NODE]
    first = AgentProcess(args, log_path=tmp_path / "agent.log").start()
    sessions: list[str] = []
    try:
        first.put("/v1/catalog/register", {"Node": "n0", "Address": "127.0.1.1"})
        first.put("/v1/agent/service/register", {"Name": "local", "Port": 81, "Check": {"TTL": "60s"}})
        for i in range(250):
            method, path, body = rng.choice(HOSTILE) if i % 3 == 0 else _valid_call(rng, sessions)
            raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            status, _, answer = first.request(method, path, raw)
            if i % 3 == 0:
                assert 400 <= status < 500, (path, body, answer)
            elif path == "/v1/session/create" and status == 200:
                sessions.append(json.loads(answer)["ID"])
            else:
                assert status == 200 or b"invalid session" in answer, (path, body, status, answer)
        before = _state(first)
    finally:
        first.kill(signal.SIGKILL)
    assert before["kv"]
    assert before["nodes"]

    with AgentProcess(
        args, http_port=first.http_port, dns_port=first.dns_port, log_path=tmp_path / "agent.log"
    ) as second:
        assert _state(second) == before
        assert second.put("/v1/kv/after-restart", b"ok") is True
