"""``waypost proxy`` end to end: the real CLI (on uvloop) in front of three real HTTP server
processes, with a load generator running while the catalog changes and an instance dies.

Every change is followed by waiting until the proxy's status endpoint reports the agent's
index for the service, then checking that the next new connections follow the change; the
load generator (bounded workers, a new connection per request) counts every failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from http_backends import BackendProcess, Load, agent_index, fetch
from waypost.proxy.status import STATUS_PATH
from waypost.testing import AgentProcess, free_port
from waypost_command import waypost_running

WORKERS = 8


@contextlib.contextmanager
def proxy_process(
    agent: AgentProcess, tmp_path: Path, service: str, port: int, status: int
) -> Iterator[Path]:
    config = tmp_path / "proxy.hcl"
    config.write_text(
        f'proxy {{\n  status_addr = "127.0.0.1:{status}"\n  connect_timeout = "1s"\n'
        f'  listener {{\n    service = "{service}"\n    bind = "127.0.0.1:{port}"\n  }}\n}}\n'
    )
    log = tmp_path / "proxy.log"
    with waypost_running(log, "proxy", "-http-addr", agent.address, "-config", str(config)):
        yield log


async def proxy_status(port: int) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {STATUS_PATH} HTTP/1.1\r\nHost: proxy\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(-1), 5)
    finally:
        writer.close()
    return json.loads(raw.partition(b"\r\n\r\n")[2])


async def settled(agent: AgentProcess, status_port: int, service: str) -> list[str]:
    """Wait (at most 10s) until the proxy applies the agent's index; its upstream IDs then."""
    want = agent_index(agent, service)
    for _ in range(500):
        with contextlib.suppress(OSError):
            (listener,) = (await proxy_status(status_port))["Listeners"]
            if listener["Index"] >= want:
                return sorted(u["ServiceID"] for u in listener["Upstreams"])
        await asyncio.sleep(0.02)
    raise AssertionError(f"the proxy never applied index {want}")


def _register(agent: AgentProcess, sid: str, port: int) -> None:
    check = {"CheckID": f"check-{sid}", "TTL": "10m", "Status": "passing"}
    agent.put("/v1/agent/service/register", {"ID": sid, "Name": "e2eweb", "Port": port, "Check": check})


@pytest.fixture
def backends(dev_agent: AgentProcess) -> Iterator[dict[str, BackendProcess]]:
    """Four backend processes; their registrations are removed afterwards."""
    names = ("b1", "b2", "b3", "b4")
    with contextlib.ExitStack() as stack:
        yield {n: stack.enter_context(BackendProcess(n, free_port())) for n in names}
    for sid in names:
        dev_agent.request("PUT", f"/v1/agent/service/deregister/{sid}")


async def test_a_hundred_catalog_changes_under_load_fail_no_request(
    dev_agent: AgentProcess, tmp_path: Path, backends: dict[str, BackendProcess]
) -> None:
    for sid in ("b1", "b2", "b3"):
        _register(dev_agent, sid, backends[sid].port)
    port, status = free_port(), free_port()
    with proxy_process(dev_agent, tmp_path, "e2eweb", port, status):
        assert await settled(dev_agent, status, "e2eweb") == ["b1", "b2", "b3"]
        load = Load(port)
        workers = [asyncio.create_task(load.worker()) for _ in range(WORKERS)]
        try:
            changes = 0
            steps = [
                ("/v1/agent/check/fail/check-b1", {"b2", "b3"}),
                ("/v1/agent/check/pass/check-b1", {"b1", "b2", "b3"}),
                ("/v1/agent/service/maintenance/b2?enable=true", {"b1", "b3"}),
                ("/v1/agent/service/maintenance/b2?enable=false", {"b1", "b2", "b3"}),
                ("/v1/agent/service/deregister/b3", {"b1", "b2"}),
                ("register b3", {"b1", "b2", "b3"}),
                ("register b4", {"b1", "b2", "b3", "b4"}),
                ("/v1/agent/service/deregister/b4", {"b1", "b2", "b3"}),
            ]
            while changes < 100:
                for action, expected in steps:
                    if action.startswith("register "):
                        sid = action.split()[1]
                        await asyncio.to_thread(_register, dev_agent, sid, backends[sid].port)
                    else:
                        await asyncio.to_thread(dev_agent.put, action)
                    changes += 1
                    assert set(await settled(dev_agent, status, "e2eweb")) == expected
                    # The next new connections follow the change.
                    assert {await fetch(port) for _ in range(len(expected) * 2)} <= expected
                    if changes == 100:
                        break
        finally:
            load.stop = True
            await asyncio.gather(*workers)
        assert load.errors == []
        assert set(load.ok) == {"b1", "b2", "b3", "b4"}
        assert sum(load.ok.values()) > 100


async def test_killing_an_instance_costs_at_most_its_in_flight_connections(
    dev_agent: AgentProcess, tmp_path: Path, backends: dict[str, BackendProcess]
) -> None:
    for sid in ("b1", "b2", "b3"):
        _register(dev_agent, sid, backends[sid].port)
    port, status = free_port(), free_port()
    with proxy_process(dev_agent, tmp_path, "e2eweb", port, status) as log:
        assert await settled(dev_agent, status, "e2eweb") == ["b1", "b2", "b3"]
        load = Load(port)
        workers = [asyncio.create_task(load.worker()) for _ in range(WORKERS)]
        try:
            for _ in range(500):
                if load.ok["b2"] >= 20:
                    break
                await asyncio.sleep(0.01)
            backends["b2"].kill()  # still registered and passing: only the proxy can notice
            before = sum(load.ok.values())
            for _ in range(1000):
                if sum(load.ok.values()) >= before + 500:
                    break
                await asyncio.sleep(0.01)
        finally:
            load.stop = True
            await asyncio.gather(*workers)
        assert len(load.errors) <= WORKERS  # each worker had at most one connection in flight
        answers = Counter([await fetch(port) for _ in range(30)])
        assert set(answers) == {"b1", "b3"}
        (listener,) = (await proxy_status(status))["Listeners"]
        assert {u["ServiceID"]: u["Ejected"] for u in listener["Upstreams"]}["b2"] is True
        assert "ejected for" in log.read_text()
