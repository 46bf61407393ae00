"""The runtime API client against a real HAProxy (master-worker, admin socket on 127.0.0.1 only):
each command's effect as ``show servers state`` reports it, refusals as errors, and a reload."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from http_backends import Backend, fetch
from waypost.proxy.config import ListenerConfig
from waypost.proxy.haproxy_config import HaproxySettings, backend_name, render
from waypost.proxy.haproxy_runtime import (
    HaproxyError,
    MasterClient,
    RuntimeClient,
    check_reply,
    parse_servers_state,
)
from waypost.testing import free_port, wait_for

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")

COLUMNS = (
    "be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight"
    " srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state"
    " srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl"
    " srv_check_port srv_check_addr srv_agent_addr srv_agent_port"
)
STATE = (
    f"1\n# {COLUMNS}\n"
    "3 b_web 1 s1 127.0.0.1 2 4 5 1 0 1 0 0 8 0 0 0 - 9999 - 0 0 - - 0\n"
    "3 b_web 2 s2 127.0.0.1 0 5 1 1 1 1 0 0 8 0 0 0 - 1 - 0 0 - - 0\n\n"
)


def test_servers_state_rows_by_column_name() -> None:
    s1, s2 = parse_servers_state(STATE)
    assert (s1.name, s1.target, s1.weight, s1.ready) == ("s1", "127.0.0.1:9999", 5, True)
    assert (s2.name, s2.maint, s2.ready) == ("s2", True, False)
    with pytest.raises(HaproxyError, match="unexpected answer"):
        parse_servers_state("Unknown command.\n")


def test_refusals_are_errors_and_acknowledgements_are_not() -> None:
    assert check_reply("set weight b/s1 3", "\n") == ""
    assert check_reply("add server b/d1 127.0.0.1:80", "New server registered.\n\n")
    with pytest.raises(HaproxyError, match="No such server"):
        check_reply("set weight b/s9 3", "No such server.\n\n")


@pytest.fixture
def listener() -> ListenerConfig:
    return ListenerConfig("web", "127.0.0.1", free_port())


@pytest.fixture
def haproxy(listener: ListenerConfig) -> Iterator[tuple[RuntimeClient, MasterClient]]:
    """A real HAProxy in master-worker mode on a rendered file with three slots."""
    with tempfile.TemporaryDirectory(prefix="wp-hx-") as tmp:
        admin, master, cfg = f"{tmp}/admin.sock", f"{tmp}/master.sock", Path(tmp) / "haproxy.cfg"
        cfg.write_text(render([listener], HaproxySettings(admin, slots=3)))
        proc = subprocess.Popen([HAPROXY, "-W", "-S", master, "-f", str(cfg)], stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: Path(admin).exists() and Path(master).exists(), limit=10)
            yield RuntimeClient(admin), MasterClient(master)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend("a") as b:
        yield b


async def test_a_slot_set_ready_at_an_address_takes_traffic(
    haproxy: tuple[RuntimeClient, MasterClient], listener: ListenerConfig, backend: Backend
) -> None:
    runtime, _ = haproxy
    name = backend_name(listener)
    assert [s.maint for s in await runtime.servers(name)] == [True, True, True]
    await runtime.set_addr(name, "s2", "127.0.0.1", backend.port)
    await runtime.set_weight(name, "s2", 7)
    await runtime.set_state(name, "s2", "ready")
    s2 = (await runtime.servers(name))[1]
    assert (s2.target, s2.weight, s2.ready) == (f"127.0.0.1:{backend.port}", 7, True)
    assert await fetch(listener.port) == "a"
    await runtime.set_state(name, "s2", "drain")
    assert (await runtime.servers(name))[1].drain


async def test_dynamic_servers_are_added_and_deleted(
    haproxy: tuple[RuntimeClient, MasterClient], listener: ListenerConfig, backend: Backend
) -> None:
    runtime, _ = haproxy
    name = backend_name(listener)
    await runtime.add_server(name, "d1", f"127.0.0.1:{backend.port}", 3)
    d1 = (await runtime.servers(name))[-1]
    assert (d1.name, d1.weight, d1.maint) == ("d1", 3, True)
    await runtime.set_state(name, "d1", "ready")
    assert await fetch(listener.port) == "a"
    await runtime.set_state(name, "d1", "maint")
    await runtime.del_server(name, "d1")
    assert [s.name for s in await runtime.servers(name)] == ["s1", "s2", "s3"]


async def test_refused_commands_raise_with_haproxys_words(
    haproxy: tuple[RuntimeClient, MasterClient], listener: ListenerConfig
) -> None:
    runtime, _ = haproxy
    name = backend_name(listener)
    with pytest.raises(HaproxyError, match="No such server"):
        await runtime.set_weight(name, "s9", 1)
    with pytest.raises(HaproxyError, match="between 0 and 256"):
        await runtime.set_weight(name, "s1", 300)
    with pytest.raises(HaproxyError, match="Invalid addr"):
        await runtime.run(f"set server {name}/s1 addr not-an-ip")
    with pytest.raises(ValueError, match="ready, drain or maint"):
        await runtime.set_state(name, "s1", "up")


async def test_a_reload_through_the_master_starts_a_new_worker_on_the_same_port(
    haproxy: tuple[RuntimeClient, MasterClient], listener: ListenerConfig, backend: Backend
) -> None:
    runtime, master = haproxy
    before = await runtime.worker_pid()
    assert await master.workers() == [before]
    await master.reload()
    workers: list[int] = []
    for _ in range(200):  # at most 10s; the master refuses connections while it re-executes
        with contextlib.suppress(OSError):
            workers = await master.workers()
            if workers != [before] and len(workers) == 1 and await runtime.worker_pid() == workers[0]:
                break
        await asyncio.sleep(0.05)
    assert len(workers) == 1
    assert workers != [before]
    name = backend_name(listener)
    answer = ""
    for _ in range(100):  # at most 10s: a loaded machine can be slow to hand the sockets over
        with contextlib.suppress(OSError):
            await runtime.set_addr(name, "s1", "127.0.0.1", backend.port)
            await runtime.set_state(name, "s1", "ready")
            answer = await fetch(listener.port)
            break
        await asyncio.sleep(0.1)
    assert answer == "a"
