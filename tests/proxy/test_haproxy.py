"""The HAProxy controller: ``plan`` (pure) and the controller between a real agent and a real
HAProxy it starts itself, where every change is runtime commands and never a reload."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from http_backends import Backend, fetch, get
from waypost.client import ApiClient
from waypost.proxy.config import ListenerConfig, ProxyConfig
from waypost.proxy.haproxy import HaproxyController, HaproxyOptions, addressable, plan
from waypost.proxy.haproxy_config import backend_name
from waypost.proxy.haproxy_runtime import ServerState
from waypost.proxy.runner import StartError
from waypost.proxy.upstreams import Upstream
from waypost.testing import AgentProcess, free_port

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
needs_haproxy = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")

B = "b_web"


def _slot(name: str, port: int = 1, *, admin: int = 5, weight: int = 1) -> ServerState:
    return ServerState(B, name, "127.0.0.1", port, 2 if admin & 1 == 0 else 0, admin, weight)


def _up(port: int, weight: int = 1) -> Upstream:
    return Upstream("127.0.0.1", port, weight, "n1", f"web-{port}")


def test_new_instances_take_idle_slots_and_go_ready() -> None:
    commands = plan(B, [_slot("s1"), _slot("s2")], [_up(8001, 3)])
    assert commands == [
        "set server b_web/s1 addr 127.0.0.1 port 8001",
        "set weight b_web/s1 3",
        "set server b_web/s1 state ready",
    ]


def test_nothing_to_do_when_haproxy_already_serves_the_set() -> None:
    assert plan(B, [_slot("s1", 8001, admin=4, weight=2), _slot("s2")], [_up(8001, 2)]) == []


def test_weight_changes_and_departures_need_no_new_address() -> None:
    slots = [_slot("s1", 8001, admin=4), _slot("s2", 8002, admin=4)]
    assert plan(B, slots, [_up(8001, 500)]) == [
        "set weight b_web/s1 256",  # HAProxy's ceiling
        "set server b_web/s2 state maint",
    ]


def test_a_departing_slot_is_reused_only_when_no_idle_one_is_left() -> None:
    slots = [_slot("s1", 8001, admin=4), _slot("s2", 8002, admin=4)]
    assert plan(B, slots, [_up(8001), _up(8003)]) == [
        "set server b_web/s2 state maint",
        "set server b_web/s2 addr 127.0.0.1 port 8003",
        "set weight b_web/s2 1",
        "set server b_web/s2 state ready",
    ]


def test_more_instances_than_slots_become_dynamic_servers_deleted_once_idle() -> None:
    full = plan(B, [_slot("s1", 8001, admin=4)], [_up(8001), _up(8002, 2)])
    assert full == [
        "add server b_web/d1 127.0.0.1:8002 weight 2",
        "set weight b_web/d1 2",
        "set server b_web/d1 state ready",
    ]
    idle = [_slot("s1", 8001, admin=4), ServerState(B, "d1", "127.0.0.1", 8002, 0, 1, 2)]
    assert plan(B, idle, [_up(8001)]) == ["del server b_web/d1"]


def test_a_drained_or_maintained_instance_that_is_wanted_again_goes_ready() -> None:
    assert plan(B, [_slot("s1", 8001, admin=4 | 8)], [_up(8001)]) == ["set server b_web/s1 state ready"]


def test_instances_without_an_ip_address_are_left_out() -> None:
    named = Upstream("web.example.com", 80, 1, "n1", "web-1")
    empty = Upstream("", 80, 1, "n1", "web-2")
    assert addressable([_up(8001), named, empty, Upstream("::1", 80, 1, "n1", "v6")]) == (
        (_up(8001), Upstream("::1", 80, 1, "n1", "v6")),
        [named, empty],
    )
    assert (
        plan(B, [_slot("s1")], [Upstream("::1", 80, 2, "n1", "v6")])[0]
        == "set server b_web/s1 addr ::1 port 80"
    )


@pytest.fixture
def sockets() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wp-hx-") as tmp:
        yield Path(tmp)


class Web:
    """In-process HTTP backends registered as ``hxweb`` with TTL checks."""

    def __init__(self, agent: AgentProcess) -> None:
        self.agent = agent
        self.stack = contextlib.AsyncExitStack()
        self.ports: dict[str, int] = {}

    async def start(self, sid: str, name: str = "hxweb", tags: Sequence[str] = ()) -> int:
        port = (await self.stack.enter_async_context(Backend(sid))).port
        check = {"CheckID": f"check-{sid}", "TTL": "10m", "Status": "passing"}
        body = {"ID": sid, "Name": name, "Port": port, "Check": check, "Tags": list(tags)}
        await asyncio.to_thread(self.agent.put, "/v1/agent/service/register", body)
        self.stack.push_async_callback(
            asyncio.to_thread, self.agent.request, "PUT", f"/v1/agent/service/deregister/{sid}"
        )
        self.ports[sid] = port
        return port

    async def close(self) -> None:
        await self.stack.aclose()


@pytest.fixture
async def web(dev_agent: AgentProcess) -> AsyncIterator[Web]:
    w = Web(dev_agent)
    try:
        yield w
    finally:
        await w.close()


@contextlib.asynccontextmanager
async def controller(
    agent: AgentProcess,
    sockets: Path,
    listeners: list[ListenerConfig],
    *,
    slots: int = 2,
    http_bind: str = "",
) -> AsyncIterator[HaproxyController]:
    options = HaproxyOptions(
        str(sockets / "haproxy.cfg"), str(sockets / "admin.sock"), HAPROXY, slots=slots, http_bind=http_bind
    )
    async with ApiClient(agent.address) as api:
        ctl = HaproxyController(ProxyConfig(listeners=listeners), api, options, wait="10s")
        await ctl.start()
        try:
            yield ctl
        finally:
            await ctl.close()


async def until(ctl: HaproxyController, backend: str, want: dict[int, int]) -> None:
    """At most 10s until the servers in service are ``{port: weight}``."""
    for _ in range(200):
        ready = {s.port: s.weight for s in await ctl.runtime.servers(backend) if s.ready}
        if ready == want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"haproxy serves {ready}, not {want}")


@needs_haproxy
async def test_catalog_changes_reach_haproxy_without_a_reload(
    dev_agent: AgentProcess, sockets: Path, web: Web
) -> None:
    listener = ListenerConfig("hxweb", "127.0.0.1", free_port())
    name = backend_name(listener)
    p1, p2 = await web.start("w1"), await web.start("w2")
    async with controller(dev_agent, sockets, [listener], slots=2) as ctl:
        pid = await ctl.runtime.worker_pid()
        await until(ctl, name, {p1: 1, p2: 1})
        assert {await fetch(listener.port) for _ in range(6)} == {"w1", "w2"}
        p3 = await web.start("w3")  # a third instance: more than the slots
        await until(ctl, name, {p1: 1, p2: 1, p3: 1})
        await asyncio.to_thread(dev_agent.put, "/v1/agent/check/fail/check-w1")
        await until(ctl, name, {p2: 1, p3: 1})
        await asyncio.to_thread(dev_agent.put, "/v1/agent/service/maintenance/w2?enable=true")
        await until(ctl, name, {p3: 1})
        assert {await fetch(listener.port) for _ in range(4)} == {"w3"}
        await asyncio.to_thread(dev_agent.put, "/v1/agent/check/pass/check-w1")
        await asyncio.to_thread(dev_agent.put, "/v1/agent/service/maintenance/w2?enable=false")
        await until(ctl, name, {p1: 1, p2: 1, p3: 1})
        assert await ctl.runtime.worker_pid() == pid


@needs_haproxy
async def test_a_running_haproxy_reloads_only_for_a_new_listener_set(
    dev_agent: AgentProcess, sockets: Path, web: Web
) -> None:
    first = ListenerConfig("hxweb", "127.0.0.1", free_port())
    second = ListenerConfig("hxweb", "127.0.0.1", free_port())
    port = await web.start("w1")
    async with controller(dev_agent, sockets, [first]) as running:
        await until(running, backend_name(first), {port: 1})
        pid = await running.runtime.worker_pid()
        external = HaproxyOptions(running.options.config_path, running.options.admin_socket, slots=2)
        async with ApiClient(dev_agent.address) as api:
            same = HaproxyController(ProxyConfig(listeners=[first]), api, external, wait="10s")
            await same.start()
            await same.close()
            assert await running.runtime.worker_pid() == pid
            more = HaproxyController(ProxyConfig(listeners=[first, second]), api, external, wait="10s")
            await more.start()
            try:
                assert await more.runtime.worker_pid() != pid
                await until(more, backend_name(second), {port: 1})
                assert await fetch(second.port) == "w1"
            finally:
                await more.close()


@needs_haproxy
async def test_a_haproxy_that_dies_is_started_again_with_its_slots_filled(
    dev_agent: AgentProcess, sockets: Path, web: Web
) -> None:
    listener = ListenerConfig("hxweb", "127.0.0.1", free_port())
    port = await web.start("w1")
    async with controller(dev_agent, sockets, [listener]) as ctl:
        await until(ctl, backend_name(listener), {port: 1})
        process = ctl._process
        assert process is not None
        process.kill()
        for _ in range(200):  # at most 10s
            with contextlib.suppress(OSError, ConnectionError, TimeoutError):
                if ctl._process is not process and await fetch(listener.port) == "w1":
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("haproxy was not started again")


async def test_no_tcp_listener_is_a_start_error(dev_agent: AgentProcess, sockets: Path) -> None:
    udp = ListenerConfig("dns", "127.0.0.1", free_port(), protocol="udp")
    with pytest.raises(StartError, match="no TCP listener in the -config file and no -haproxy-http"):
        async with controller(dev_agent, sockets, [udp]):
            pass


@needs_haproxy
async def test_http_routes_by_urlprefix_tags_and_a_new_route_reloads_without_a_failed_request(
    dev_agent: AgentProcess, sockets: Path, web: Web
) -> None:
    tcp = ListenerConfig("hxweb", "127.0.0.1", free_port())
    http_port = free_port()
    p1 = await web.start("w1", tags=["urlprefix-/web"])
    await web.start("a1", "hxapi", ["urlprefix-example.com/api", "urlprefix-/api/v2"])
    async with controller(dev_agent, sockets, [tcp], http_bind=f"127.0.0.1:{http_port}") as ctl:
        await until(ctl, backend_name(tcp), {p1: 1})
        assert [r.tag for r in ctl.routes] == [
            "urlprefix-example.com/api",
            "urlprefix-/api/v2",
            "urlprefix-/web",
        ]
        for route in ctl.routes:
            await until(ctl, route.backend, {p1: 1} if route.service == "hxweb" else {web.ports["a1"]: 1})
        assert await get(http_port, "Example.com:80", "/api/x") == (200, "a1")
        assert await get(http_port, "other.org", "/api/v2/y") == (200, "a1")
        assert await get(http_port, "other.org", "/web/") == (200, "w1")
        assert (await get(http_port, "other.org", "/api/x"))[0] == 404
        pid = await ctl.runtime.worker_pid()
        failures: list[str] = []
        done = asyncio.Event()

        async def load() -> None:
            for _ in range(20_000):  # bounded; stopped by ``done`` long before
                if done.is_set():
                    return
                try:
                    assert await fetch(tcp.port) == "w1"
                    assert await get(http_port, "example.com", "/api") == (200, "a1")
                except (OSError, TimeoutError, AssertionError) as exc:
                    failures.append(repr(exc))

        workers = [asyncio.create_task(load()) for _ in range(4)]
        try:
            await web.start("n1", "hxnew", ["urlprefix-/new"])
            for _ in range(200):  # at most 10s
                if ctl.reloads and (await get(http_port, "x", "/new"))[1] == "n1":
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # traffic through the new worker too
        finally:
            done.set()
            await asyncio.gather(*workers)
        assert ctl.reloads == 1
        assert await ctl.runtime.worker_pid() != pid
        assert failures == []
