"""The delta stream against a real agent over real HTTP: changes in order, resuming after a
disconnect, a reader that stops reading cut off with the agent's memory bounded, and a
thousand readers at once."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from acl_kit import Caller, start_acl_agent
from waypost.client import ApiClient
from waypost.client.api import StreamEvent
from waypost.testing import AgentProcess, wait_for

CROWD = 1000


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """A dev agent that lets one client address hold a thousand connections; both this
    process and the agent (which inherits the limit) may open that many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * CROWD if hard == resource.RLIM_INFINITY else min(4 * CROWD, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    hcl = "limits { http_max_conns_per_client = 0 }"
    with AgentProcess(["-dev", "-node", "stream-node", "-hcl", hcl], log_path=log) as a:
        yield a


def register(agent: AgentProcess, sid: str, name: str = "web") -> None:
    agent.put("/v1/agent/service/register", {"Name": name, "ID": sid, "Port": 80, "Check": {"TTL": "60s"}})


async def take(events: AsyncIterator[StreamEvent], until: str, limit: float = 20.0) -> list[StreamEvent]:
    """Events up to and including the first ``until`` event (or one with an id, for "id")."""
    out: list[StreamEvent] = []
    async with asyncio.timeout(limit):
        async for event in events:
            out.append(event)
            if event.event == until or (until == "id" and event.id is not None):
                return out
    raise AssertionError(f"the stream ended before {until}: {out}")


def metric(agent: AgentProcess, name: str) -> float:
    found = agent.get("/v1/agent/metrics")
    rows = found["Gauges"] + [{"Name": c["Name"], "Value": c["Count"]} for c in found["Counters"]]
    return float(next(r["Value"] for r in rows if r["Name"] == name))


def rss_kb(agent: AgentProcess) -> int:
    assert agent.proc is not None
    status = Path(f"/proc/{agent.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def test_registration_health_change_and_deregistration_come_in_order(agent: AgentProcess) -> None:
    async def run() -> None:
        async with ApiClient(agent.address) as api:
            events = api.events("/v1/stream/health/service/ordered").__aiter__()
            snapshot = await take(events, "end-of-snapshot")
            assert [e.event for e in snapshot] == ["end-of-snapshot"]
            start = snapshot[-1].id
            assert start is not None
            await asyncio.to_thread(register, agent, "ordered-1", "ordered")
            await asyncio.to_thread(agent.put, "/v1/agent/check/pass/service:ordered-1")
            await asyncio.to_thread(agent.put, "/v1/agent/service/deregister/ordered-1")
            seen = [(await take(events, "id"))[-1] for _ in range(3)]
            await events.aclose()  # type: ignore[attr-defined]
        assert [e.event for e in seen] == ["upsert", "upsert", "delete"]
        assert [e.data["Checks"][-1]["Status"] for e in seen] == ["critical", "passing", "passing"]
        assert all(e.data["Service"]["ID"] == "ordered-1" for e in seen)
        ids = [start, *(e.id for e in seen)]
        assert ids == sorted(ids)
        assert len(set(ids)) == 4

    asyncio.run(run())


def test_a_resumed_reader_sees_exactly_the_changes_it_missed(agent: AgentProcess) -> None:
    register(agent, "resume-1", "resume")

    async def run() -> None:
        async with ApiClient(agent.address) as api:
            first = api.events("/v1/stream/health/service/resume").__aiter__()
            snapshot = await take(first, "end-of-snapshot")
            await first.aclose()  # type: ignore[attr-defined]
            assert [e.event for e in snapshot] == ["upsert", "end-of-snapshot"]
            last = snapshot[-1].id
            await asyncio.to_thread(register, agent, "resume-2", "resume")
            await asyncio.to_thread(agent.put, "/v1/agent/check/pass/service:resume-1")
            await asyncio.to_thread(agent.put, "/v1/agent/service/deregister/resume-2")
            await asyncio.to_thread(agent.put, "/v1/kv/unrelated", b"x")
            again = api.events("/v1/stream/health/service/resume", last_id=last).__aiter__()
            missed = [(await take(again, "id"))[-1] for _ in range(3)]
            await again.aclose()  # type: ignore[attr-defined]
            ops = [(e.event, e.data["Service"]["ID"]) for e in missed]
            assert ops == [("upsert", "resume-2"), ("upsert", "resume-1"), ("delete", "resume-2")]
            assert last is not None
            assert all(e.id is not None and e.id > last for e in missed)
            stale = api.events("/v1/stream/health/service/resume", query={"index": 1}).__aiter__()
            fresh = await take(stale, "end-of-snapshot")
            await stale.aclose()  # type: ignore[attr-defined]
            assert [e.event for e in fresh] == ["new-snapshot", "upsert", "end-of-snapshot"]

    asyncio.run(run())


def test_passing_streams_an_instance_in_and_out_as_its_health_changes(agent: AgentProcess) -> None:
    register(agent, "gated-1", "gated")

    async def run() -> list[tuple[str, str]]:
        async with ApiClient(agent.address) as api:
            events = api.events("/v1/stream/health/service/gated", query={"passing": True}).__aiter__()
            seen = await take(events, "end-of-snapshot")
            await asyncio.to_thread(agent.put, "/v1/agent/check/pass/service:gated-1")
            seen += await take(events, "id")
            await asyncio.to_thread(agent.put, "/v1/agent/check/warn/service:gated-1")
            seen += await take(events, "id")
            await events.aclose()  # type: ignore[attr-defined]
        return [
            (e.event, e.data["Checks"][-1]["Status"] if e.event != "end-of-snapshot" else "") for e in seen
        ]

    assert asyncio.run(run()) == [("end-of-snapshot", ""), ("upsert", "passing"), ("delete", "warning")]


def test_bad_stream_requests_are_refused_with_their_field(agent: AgentProcess) -> None:
    cases = [
        (
            "/v1/stream/health/service/web?index=x",
            'Invalid index: strconv.ParseUint: parsing "x": invalid syntax',
        ),
        ("/v1/stream/kv/app?filter=Key%20%3D%3D%20%22a%22", "Invalid filter: /v1/stream/kv/:prefix takes no"),
        ("/v1/stream/health/service/web?filter=%3D%3D", "Failed to create boolean expression evaluator"),
        ("/v1/stream/catalog/services?dc=elsewhere", "Streams are served within their datacenter"),
        ("/v1/stream/health/service/web?tag=v1", "Invalid parameter: /v1/stream/health/service/:name does"),
    ]
    for path, message in cases:
        status, _, body = agent.request("GET", path)
        assert status == 400, (path, status, body)
        assert body.decode().startswith(message), (path, body)
    with socket.create_connection(("127.0.0.1", agent.http_port), timeout=5) as sock:
        sock.sendall(b"GET /v1/stream/kv/ HTTP/1.1\r\nHost: x\r\nLast-Event-ID: -3\r\n\r\n")
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 400"), head
    assert "Invalid Last-Event-ID: '-3' is not an index" in head


def test_a_reader_that_stops_reading_is_cut_off_and_memory_stays_bounded(agent: AgentProcess) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", agent.http_port))
    sock.sendall(b"GET /v1/stream/kv/stall/ HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: metric(agent, "waypost.stream.readers") >= 1)
    before = rss_kb(agent)
    cut_before = metric(agent, "waypost.stream.cut_off")
    value = b"v" * 60_000
    writes = 0
    for writes in range(1, 301):  # about 24 MB of events at most, far past what may be pending
        agent.put("/v1/kv/stall/key", value)
        if writes % 20 == 0 and metric(agent, "waypost.stream.cut_off") > cut_before:
            break
    assert metric(agent, "waypost.stream.cut_off") == cut_before + 1, f"not cut off after {writes} writes"
    growth_mb = (rss_kb(agent) - before) / 1024
    assert growth_mb < 64, f"the agent grew by {growth_mb:.0f} MB for one stalled reader"
    sock.settimeout(10)
    with contextlib.suppress(ConnectionResetError):
        while sock.recv(1 << 20):
            pass
    sock.close()
    wait_for(lambda: metric(agent, "waypost.stream.readers") == 0)


def test_a_thousand_readers_at_once_all_get_their_snapshot_and_the_next_change(agent: AgentProcess) -> None:
    for i in range(5):
        register(agent, f"crowd-{i}", "crowd")

    async def reader(ready: asyncio.Event, snapshots: list[int], changes: list[int]) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", agent.http_port)
        try:
            w.write(b"GET /v1/stream/health/service/crowd HTTP/1.1\r\nHost: x\r\n\r\n")
            seen = b""
            while b"event: end-of-snapshot" not in seen:
                seen += await r.read(1 << 16) or b"!"
                assert not seen.endswith(b"!"), "closed before the snapshot ended"
            snapshots.append(seen.count(b"event: upsert"))
            await ready.wait()
            seen = seen[seen.index(b"event: end-of-snapshot") + 1 :]
            while b"event: upsert" not in seen:
                seen += await r.read(1 << 16) or b"!"
                assert not seen.endswith(b"!"), "closed before the change came"
            changes.append(1)
        finally:
            w.close()

    async def run() -> tuple[list[int], list[int], float]:
        ready = asyncio.Event()
        snapshots: list[int] = []
        changes: list[int] = []
        started = time.monotonic()
        async with asyncio.timeout(90):
            tasks = [asyncio.create_task(reader(ready, snapshots, changes)) for _ in range(CROWD)]
            while len(snapshots) < CROWD:
                await asyncio.sleep(0.05)
                failed = [t for t in tasks if t.done() and t.exception() is not None]
                if failed:
                    raise failed[0].exception()  # type: ignore[misc]
            await asyncio.to_thread(agent.put, "/v1/agent/check/pass/service:crowd-0")
            ready.set()
            await asyncio.gather(*tasks)
        return snapshots, changes, time.monotonic() - started

    snapshots, changes, took = asyncio.run(run())
    assert snapshots == [5] * CROWD
    assert len(changes) == CROWD
    print(f"{CROWD} readers: snapshot and one change each in {took:.1f}s")


def test_a_token_reads_only_what_it_may_gets_a_new_snapshot_when_that_changes_and_ends_when_deleted(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with start_acl_agent(tmp_path_factory.mktemp("acl")) as acl:
        call = Caller(acl)
        for name in ("web", "secret"):
            call.ok("PUT", "/v1/agent/service/register", {"Name": name, "Port": 80})
        token = call.token_for('service "web" { policy = "read" }', "web-reader")
        accessor = call.ok("GET", "/v1/acl/token/self", token=token)["AccessorID"]

        async def run() -> list[StreamEvent]:
            async with ApiClient(acl.address, token=token) as api:
                events = api.events("/v1/stream/catalog/services").__aiter__()
                snapshot = await take(events, "end-of-snapshot")
                assert [e.data for e in snapshot[:-1]] == [{"web": []}]
                await asyncio.to_thread(call.ok, "PUT", "/v1/agent/service/register", {"Name": "secret2"})
                await asyncio.to_thread(
                    call.ok, "PUT", "/v1/agent/service/register", {"Name": "web", "Tags": ["v2"]}
                )
                change = await take(events, "id")
                assert [(e.event, e.data) for e in change] == [("upsert", {"web": ["v2"]})]
                policy = call.ok("GET", "/v1/acl/policy/name/web-reader")
                widened = {"Name": "web-reader", "Rules": 'service_prefix "secret" { policy = "read" }'}
                await asyncio.to_thread(call.ok, "PUT", f"/v1/acl/policy/{policy['ID']}", widened)
                again = await take(events, "end-of-snapshot")
                assert again[0].event == "new-snapshot"
                assert [e.data for e in again[1:-1]] == [{"secret": []}, {"secret2": []}]
                await asyncio.to_thread(call.ok, "DELETE", f"/v1/acl/token/{accessor}")
                rest: list[StreamEvent] = []
                async with asyncio.timeout(20):
                    rest.extend([e async for e in events])
                return rest

        assert asyncio.run(run()) == [], "the stream ends, with nothing more, once its token is gone"
        status, body, _ = call("GET", "/v1/stream/catalog/services", token=token)
        assert status == 403
        assert body == "ACL not found"
