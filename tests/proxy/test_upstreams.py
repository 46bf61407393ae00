"""Upstream sets from a real agent: one shared blocking query, health, weights, meta listeners."""

from __future__ import annotations

import asyncio
from typing import Any

from waypost.client import ApiClient
from waypost.proxy.upstreams import MetaWatcher, Selector, UpstreamUpdate, UpstreamWatcher, parse_instances
from waypost.testing import AgentProcess


def _entry(port: int, checks: list[str], weights: dict[str, int] | None = None) -> dict[str, Any]:
    service: dict[str, Any] = {"ID": f"web-{port}", "Port": port, "Address": "", "Tags": ["a"]}
    if weights is not None:
        service["Weights"] = weights
    return {
        "Node": {"Node": "n1", "Address": "127.0.0.1"},
        "Service": service,
        "Checks": [{"Status": s} for s in checks],
    }


def test_critical_instances_are_left_out_and_warning_ones_take_their_weight() -> None:
    ups = parse_instances(
        [
            _entry(1, ["passing"], {"Passing": 5, "Warning": 2}),
            _entry(2, ["passing", "warning"], {"Passing": 5, "Warning": 2}),
            _entry(3, ["passing", "critical"]),
            _entry(4, ["warning"], {"Passing": 3, "Warning": 0}),
            _entry(5, []),
        ]
    )
    assert [(u.port, u.weight, u.warning) for u in ups] == [(1, 5, False), (2, 2, True), (5, 1, False)]
    assert (ups[0].target, ups[0].key, ups[0].tags) == ("127.0.0.1:1", ("n1", "web-1"), ("a",))


def _register(agent: AgentProcess, sid: str, port: int, **extra: Any) -> None:
    agent.put("/v1/agent/service/register", {"ID": sid, "Name": "up", "Port": port, **extra})


async def _until(
    watcher: UpstreamWatcher, selector: Selector, count: int, limit: float = 10.0
) -> UpstreamUpdate:
    """The answer in force for ``selector`` once it has ``count`` upstreams."""
    for _ in range(int(limit / 0.02)):
        update = watcher.current(selector)
        if update is not None and len(update.upstreams) == count:
            return update
        await asyncio.sleep(0.02)
    raise AssertionError(f"{selector} never had {count} upstreams in {limit}s: {watcher.current(selector)}")


async def test_one_query_per_service_follows_health_and_deregistration(dev_agent: AgentProcess) -> None:
    _register(dev_agent, "up-1", 7001, Check={"TTL": "30s", "Status": "passing"})
    _register(dev_agent, "up-2", 7002, Tags=["blue"], Weights={"Passing": 4, "Warning": 1})
    async with ApiClient(dev_agent.address) as api:
        watcher = UpstreamWatcher(api, wait="2s")
        seen: list[UpstreamUpdate] = []
        watcher.on_update(seen.append)
        plain, blue = Selector("up"), Selector("up", tags=("blue",))
        watcher.watch(plain)
        watcher.watch(plain)  # a second listener of the same selector shares the query
        watcher.watch(blue)  # and so does one that differs only in tags
        assert list(watcher._tasks) == [plain]
        try:
            first = await _until(watcher, plain, 2)
            assert sorted(u.port for u in first.upstreams) == [7001, 7002]
            tagged = watcher.current(blue)
            assert tagged is not None
            assert [(u.port, u.weight) for u in tagged.upstreams] == [(7002, 4)]

            dev_agent.put("/v1/agent/check/fail/service:up-1")
            down = await _until(watcher, plain, 1)
            assert down.index > first.index
            assert watcher.applied[plain] == down.index

            dev_agent.put("/v1/agent/service/maintenance/up-2?enable=true")
            await _until(watcher, plain, 0)
            dev_agent.put("/v1/agent/service/maintenance/up-2?enable=false")
            dev_agent.put("/v1/agent/check/pass/service:up-1")
            await _until(watcher, plain, 2)
            dev_agent.put("/v1/agent/service/deregister/up-2")
            await _until(watcher, blue, 0)

            watcher.release(plain)
            assert plain in watcher._tasks
            watcher.release(plain)
            assert plain in watcher._tasks  # still asked for the blue listener
            assert watcher.current(plain) is None
            watcher.release(blue)
            assert not watcher._tasks
            assert any(u.selector == blue for u in seen)
        finally:
            await watcher.close()
            dev_agent.put("/v1/agent/service/deregister/up-1")


async def test_a_listener_joining_a_running_query_is_served_at_once(dev_agent: AgentProcess) -> None:
    _register(dev_agent, "join-1", 7201, Name="join", Tags=["green"])
    _register(dev_agent, "join-2", 7202, Name="join")
    async with ApiClient(dev_agent.address) as api:
        watcher = UpstreamWatcher(api, wait="2s")
        plain, green = Selector("join"), Selector("join", tags=("green",))
        watcher.watch(plain)
        try:
            first = await _until(watcher, plain, 2)
            watcher.watch(green)
            joined = watcher.current(green)
            assert joined is not None
            assert (joined.index, [u.port for u in joined.upstreams]) == (first.index, [7201])
            assert list(watcher._tasks) == [plain]
        finally:
            await watcher.close()
            for sid in ("join-1", "join-2"):
                dev_agent.put(f"/v1/agent/service/deregister/{sid}")


async def test_filters_go_to_the_agent(dev_agent: AgentProcess) -> None:
    _register(dev_agent, "flt-1", 7101, Meta={"zone": "a"})
    _register(dev_agent, "flt-2", 7102, Meta={"zone": "b"})
    async with ApiClient(dev_agent.address) as api:
        watcher = UpstreamWatcher(api, wait="2s")
        selector = Selector("up", filter='Service.Meta.zone == "b"')
        watcher.watch(selector)
        try:
            update = await _until(watcher, selector, 1)
            assert [u.service_id for u in update.upstreams] == ["flt-2"]
            # A consumer that prefers a loop gets the answer in force first.
            updates = watcher.updates()
            assert await asyncio.wait_for(anext(updates), 5) == update
            await updates.aclose()
            assert watcher._callbacks == []
        finally:
            await watcher.close()
            for sid in ("flt-1", "flt-2"):
                dev_agent.put(f"/v1/agent/service/deregister/{sid}")


async def test_meta_watcher_finds_registrations_asking_for_a_listener(dev_agent: AgentProcess) -> None:
    dev_agent.put(
        "/v1/agent/service/register",
        {"ID": "m-1", "Name": "metasvc", "Port": 1, "Meta": {"proxy_port": "9301"}},
    )
    dev_agent.put("/v1/agent/service/register", {"ID": "m-2", "Name": "plain", "Port": 2})
    async with ApiClient(dev_agent.address) as api:
        ports = MetaWatcher(api, wait="2s").ports()
        try:
            assert await asyncio.wait_for(anext(ports), 10) == {"metasvc": 9301}
            dev_agent.put("/v1/agent/service/deregister/m-1")
            assert await asyncio.wait_for(anext(ports), 10) == {}
        finally:
            await ports.aclose()
            dev_agent.put("/v1/agent/service/deregister/m-2")
