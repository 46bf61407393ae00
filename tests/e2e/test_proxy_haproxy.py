"""``waypost proxy -haproxy`` end to end: the real CLI starts a real HAProxy (Debian's 2.6,
master-worker) in front of three real HTTP server processes, and a bounded load generator
runs while the catalog changes a hundred times.

Each change is awaited on HAProxy's own ``show servers state`` with a one-second deadline
(bounded polling, not a speed assertion); HAProxy's worker pid is read before and after,
since a reload would start a new worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_backends import BackendProcess, Load, fetch, get
from waypost.proxy.haproxy_runtime import RuntimeClient
from waypost.testing import AgentProcess, free_port
from waypost_command import waypost_running

WITHIN = 1.0
"""The issue's bound on reflecting a change, as a polling deadline."""

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")

SERVICE = "hxe2e"
WORKERS = 8


def _register(agent: AgentProcess, sid: str, port: int, weight: int = 1) -> None:
    check = {"CheckID": f"check-{sid}", "TTL": "10m", "Status": "passing"}
    body = {
        "ID": sid,
        "Name": SERVICE,
        "Port": port,
        "Check": check,
        "Weights": {"Passing": weight, "Warning": 1},
    }
    agent.put("/v1/agent/service/register", body)


@pytest.fixture
def backends(dev_agent: AgentProcess) -> Iterator[dict[str, BackendProcess]]:
    names = ("h1", "h2", "h3", "h4")
    with contextlib.ExitStack() as stack:
        yield {n: stack.enter_context(BackendProcess(n, free_port())) for n in names}
    for sid in names:
        dev_agent.request("PUT", f"/v1/agent/service/deregister/{sid}")


@contextlib.contextmanager
def haproxy_proxy(agent: AgentProcess, port: int, http: int = 0) -> Iterator[RuntimeClient]:
    """``waypost proxy -haproxy`` with one listener, stopped with SIGTERM (HAProxy with it)."""
    with tempfile.TemporaryDirectory(prefix="wp-hx-") as tmp:
        config = Path(tmp) / "proxy.hcl"
        config.write_text(
            f'proxy {{\n  listener {{\n    service = "{SERVICE}"\n    bind = "127.0.0.1:{port}"\n  }}\n}}\n'
        )
        args = ["proxy", "-http-addr", agent.address, "-config", str(config),
                "-haproxy", f"{tmp}/haproxy.cfg", "-haproxy-socket", f"{tmp}/admin.sock",
                "-haproxy-bin", HAPROXY]  # fmt: skip
        args += ["-haproxy-http", f"127.0.0.1:{http}"] if http else []
        with waypost_running(Path(tmp) / "proxy.log", *args, stop_within=15):
            yield RuntimeClient(f"{tmp}/admin.sock")


async def serving(runtime: RuntimeClient, want: dict[int, int], limit: float) -> None:
    """Until HAProxy's servers in service are ``{port: weight}``, polling for at most ``limit``s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    ready: dict[int, int] = {}
    while loop.time() < deadline:
        with contextlib.suppress(OSError):
            ready = {s.port: s.weight for s in await runtime.servers() if s.ready}
            if ready == want:
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"within {limit}s haproxy serves {ready}, not {want}")


async def test_a_hundred_changes_under_load_fail_no_request_and_never_reload(
    dev_agent: AgentProcess, backends: dict[str, BackendProcess]
) -> None:
    ports = {sid: b.port for sid, b in backends.items()}
    for sid, weight in (("h1", 1), ("h2", 2), ("h3", 3)):
        _register(dev_agent, sid, ports[sid], weight)
    port = free_port()
    with haproxy_proxy(dev_agent, port) as runtime:
        await serving(runtime, {ports["h1"]: 1, ports["h2"]: 2, ports["h3"]: 3}, limit=20)
        pid = await runtime.worker_pid()
        spread = Counter([await fetch(port) for _ in range(120)])
        assert spread == {"h1": 20, "h2": 40, "h3": 60}  # HAProxy's weighted round robin, per weights
        for sid in ("h2", "h3"):
            await asyncio.to_thread(_register, dev_agent, sid, ports[sid], 1)
        full = {ports["h1"]: 1, ports["h2"]: 1, ports["h3"]: 1}
        await serving(runtime, full, WITHIN)
        steps: list[tuple[str, set[str]]] = [
            ("/v1/agent/check/fail/check-h1", {"h2", "h3"}),
            ("/v1/agent/check/pass/check-h1", {"h1", "h2", "h3"}),
            ("/v1/agent/service/maintenance/h2?enable=true", {"h1", "h3"}),
            ("/v1/agent/service/maintenance/h2?enable=false", {"h1", "h2", "h3"}),
            ("/v1/agent/service/deregister/h3", {"h1", "h2"}),
            ("register h3", {"h1", "h2", "h3"}),
            ("register h4", {"h1", "h2", "h3", "h4"}),
            ("/v1/agent/service/deregister/h4", {"h1", "h2", "h3"}),
        ]
        load = Load(port)
        workers = [asyncio.create_task(load.worker()) for _ in range(WORKERS)]
        try:
            for change in range(100):
                action, expected = steps[change % len(steps)]
                if action.startswith("register "):
                    await asyncio.to_thread(_register, dev_agent, action.split()[1], ports[action.split()[1]])
                else:
                    await asyncio.to_thread(dev_agent.put, action)
                await serving(runtime, {ports[sid]: 1 for sid in expected}, WITHIN)
                assert {await fetch(port) for _ in range(len(expected) * 2)} <= expected
        finally:
            load.stop = True
            await asyncio.gather(*workers)
        assert load.errors == []
        assert set(load.ok) == {"h1", "h2", "h3", "h4"}
        assert await runtime.worker_pid() == pid


async def test_http_frontend_routes_by_urlprefix_tags(
    dev_agent: AgentProcess, backends: dict[str, BackendProcess]
) -> None:
    h1, h2 = backends["h1"].port, backends["h2"].port
    _register(dev_agent, "h1", h1)
    for sid, tag in (("h2", "urlprefix-shop.example/"), ("h3", "urlprefix-/api")):
        body = {"ID": sid, "Name": f"routed-{sid}", "Port": backends[sid].port, "Tags": [tag]}
        await asyncio.to_thread(dev_agent.put, "/v1/agent/service/register", body)
    port, http = free_port(), free_port()
    try:
        with haproxy_proxy(dev_agent, port, http) as runtime:
            await serving(runtime, {h1: 1, h2: 1, backends["h3"].port: 1}, limit=20)
            assert await fetch(port) == "h1"
            assert await get(http, "shop.example", "/cart") == (200, "h2")
            assert await get(http, "other.example", "/api/v1") == (200, "h3")
            assert (await get(http, "other.example", "/cart"))[0] == 404
    finally:
        for sid in ("h2", "h3"):
            dev_agent.request("PUT", f"/v1/agent/service/deregister/{sid}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-haproxy", "/tmp/x.cfg"], "-haproxy needs -haproxy-socket"),
        (["-haproxy-socket", "/tmp/x.sock"], "-haproxy-socket, -haproxy-bin and -haproxy-http need -haproxy"),
        (
            ["-haproxy", "/tmp/x.cfg", "-haproxy-socket", "/tmp/x.sock", "-haproxy-http", "localhost:80"],
            "-haproxy-http: 'localhost' is not an IP address",
        ),
    ],
)
def test_incomplete_haproxy_flags_are_usage_errors(
    dev_agent: AgentProcess, argv: list[str], message: str
) -> None:
    with tempfile.TemporaryDirectory(prefix="wp-hx-") as tmp:
        config = Path(tmp) / "proxy.hcl"
        config.write_text('proxy {\n  listener {\n    service = "x"\n    bind = "127.0.0.1:1"\n  }\n}\n')
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "waypost",
                "proxy",
                "-http-addr",
                dev_agent.address,
                "-config",
                str(config),
                *argv,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert message in done.stderr
