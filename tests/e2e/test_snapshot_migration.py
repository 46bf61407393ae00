"""Moving a catalog between backends with the CLI alone: a dev agent's snapshot restored
into a durable SQLite server, which keeps it across a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli_support import run_cli

from waypost.testing import AgentProcess


def _view(agent: AgentProcess) -> dict[str, Any]:
    kv = agent.get("/v1/kv/?recurse")
    return {
        "kv": {e["Key"]: (e["Value"], e["Flags"]) for e in kv},
        "db": [(s["Node"], s["ServiceID"], s["ServicePort"]) for s in agent.get("/v1/catalog/service/db")],
    }


def test_dev_snapshot_restores_into_a_sqlite_server(tmp_path: Path) -> None:
    backup = tmp_path / "dev.snap"
    with AgentProcess(["-dev", "-node", "mover"], log_path=tmp_path / "dev.log") as dev:
        dev.put(
            "/v1/catalog/register",
            {"Node": "db-1", "Address": "10.0.0.9", "Service": {"Service": "db", "Port": 5432}},
        )
        dev.put("/v1/kv/settings/mode?flags=3", b"blue")
        saved = _view(dev)
        assert run_cli(dev, "snapshot", "save", str(backup)).code == 0

    args = ["-server", "-bootstrap-expect", "1", "-node", "mover", "-data-dir", str(tmp_path / "data")]
    server = AgentProcess(args, log_path=tmp_path / "server.log").start()
    try:
        restored = run_cli(server, "snapshot", "restore", str(backup))
        assert (restored.code, restored.out) == (0, "Restored snapshot\n")
        assert _view(server) == saved
    finally:
        server.stop()
    with AgentProcess(args, http_port=server.http_port, log_path=tmp_path / "server.log") as again:
        assert _view(again) == saved
