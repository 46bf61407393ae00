"""The client agent's store: join addresses, what it answers before it knows a server, and
transactions whose answer is lost between a client agent and a real server agent (through
a relay that loses it) are never answered wrongly. (More of reaching servers through
their agent-to-server port: tests/agent and tests/e2e.)"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tcp_relay import Relay
from waypost.state import schema
from waypost.state.model import KVEntry
from waypost.store.base import CompactedError, Compare, Op, Put, Range, StoreError
from waypost.store.outcome import TxnOutcomeUnknownError
from waypost.store.remote import RemoteStore, probe, server_address
from waypost.testing import AgentProcess, free_port


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("10.0.0.5", "10.0.0.5:8300"),
        ("10.0.0.5:18300", "10.0.0.5:18300"),
        (" server-1.example ", "server-1.example:8300"),
        ("::1", "[::1]:8300"),
        ("[::1]", "[::1]:8300"),
        ("[fe80::1]:9000", "[fe80::1]:9000"),
    ],
)
def test_join_addresses_default_to_the_server_port(given: str, expected: str) -> None:
    assert server_address(given) == expected


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("", "missing or malformed host"),
        (":8300", "missing or malformed host"),
        ("http://10.0.0.5", "port must be a number"),
        ("10.0.0.5:0", "port must be a number from 1 to 65535"),
        ("10.0.0.5:65536", "port must be a number from 1 to 65535"),
        ("10.0.0.5:http", "port must be a number"),
        ("[::1", "expected host[:port]"),
        ("[::1]x", "expected host[:port]"),
        ("a:b:c", "expected host[:port]"),
        ("host/path:1", "missing or malformed host"),
    ],
)
def test_malformed_join_addresses_are_refused_with_the_reason(given: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="invalid address") as refused:
        server_address(given)
    assert complaint in str(refused.value)


async def test_without_servers_every_call_answers_no_known_servers() -> None:
    store = RemoteStore()
    try:
        with pytest.raises(StoreError, match=r"^No known Consul servers$"):
            await store.revision()
        store.add_server("127.0.0.1")
        store.add_server("127.0.0.1:8300")
        assert store.servers == ["127.0.0.1:8300"]
    finally:
        await store.close()


async def test_probe_names_the_address_and_the_reason() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError) as refused:
        await probe(f"127.0.0.1:{port}")
    assert str(refused.value) == (
        f"Failed to join 127.0.0.1:{port}: dial tcp 127.0.0.1:{port}: connect: connection refused"
    )


# -- transactions whose answer is lost --------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("remote")


@pytest.fixture(scope="module")
def server(base: Path) -> Iterator[AgentProcess]:
    with AgentProcess(["-dev", "-node", "server-1"], log_path=base / "server.log") as agent:
        yield agent


@pytest.fixture(scope="module")
def relay(server: AgentProcess) -> Iterator[Relay]:
    """Between the client agent (and the test's own stores) and the server's agent-to-server port."""
    with Relay(f"127.0.0.1:{server.server_port}") as running:
        yield running


_CLIENTS = itertools.count(1)


@pytest.fixture
def client(tmp_path: Path, relay: Relay) -> Iterator[AgentProcess]:
    """A client agent joined through the relay. Once its first call there fails it moves
    on to the server's own address, learnt from the members, so each test has its own."""
    args = [
        *("-bind", "127.0.0.1", "-node", f"client-{next(_CLIENTS)}", "-data-dir", str(tmp_path / "client")),
        *("-retry-interval", "1s", "-retry-join", relay.address),
    ]
    with AgentProcess(args, log_path=tmp_path / "client.log") as agent:
        yield agent


@pytest.fixture
async def remote(relay: Relay) -> AsyncIterator[RemoteStore]:
    store = RemoteStore([relay.address])
    try:
        yield store
    finally:
        await store.close()


def _entry(agent: AgentProcess, key: str) -> tuple[bytes, int, int]:
    """(value, CreateIndex, ModifyIndex) of a KV entry as the server holds it."""
    [entry] = agent.get(f"/v1/kv/{key}?consistent")
    return base64.b64decode(entry["Value"]), entry["CreateIndex"], entry["ModifyIndex"]


def _put(key: str, value: bytes) -> Put:
    return Put(schema.KVS.key(key), schema.encode(KVEntry(Key=key, Value=value)))


def _registered(server: AgentProcess, service: str) -> tuple[int, int]:
    """(CreateIndex, ModifyIndex) of the one instance of ``service`` in the server's catalog."""
    [entry] = server.get(f"/v1/catalog/service/{service}?consistent")
    return entry["CreateIndex"], entry["ModifyIndex"]


def test_a_registration_through_a_client_agent_whose_answer_was_lost_is_applied_once(
    server: AgentProcess, relay: Relay, client: AgentProcess, tmp_path: Path
) -> None:
    """A client agent's own writes (anti-entropy's) still go through its store: the
    transaction's answer is lost after it applied, and the agent learns that it did."""
    relay.interrupt(b"lost-answer")
    client.put("/v1/agent/service/register", {"Name": "lost-answer", "Port": 1})
    assert relay.interrupted.is_set()
    created, modified = _registered(server, "lost-answer")
    assert created == modified
    log = (tmp_path / "client.log").read_text()
    assert "interrupted transaction had applied" in log


def test_a_registration_through_a_client_agent_that_never_arrived_is_sent_again_and_applied_once(
    server: AgentProcess, relay: Relay, client: AgentProcess, tmp_path: Path
) -> None:
    relay.interrupt(b"never-arrived", arrive=False)
    client.put("/v1/agent/service/register", {"Name": "never-arrived", "Port": 1})
    assert relay.interrupted.is_set()
    created, modified = _registered(server, "never-arrived")
    assert created == modified
    log = (tmp_path / "client.log").read_text()
    assert "transaction interrupted" in log
    assert "interrupted transaction had applied" not in log


async def test_a_transaction_goes_to_the_next_server_when_one_refuses_the_connection(
    server: AgentProcess, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    store = RemoteStore([f"127.0.0.1:{free_port()}", relay.address])
    caplog.set_level(logging.INFO, "waypost.store.remote")
    try:
        key = schema.KVS.key("refused-first")
        result = await store.txn([Compare(key, "version", "=", 0)], [_put("refused-first", b"v1")])
    finally:
        await store.close()
    assert result.succeeded
    value, created, modified = _entry(server, "refused-first")
    assert (value, created, modified) == (b"v1", result.revision, result.revision)
    assert "interrupted" not in caplog.text


async def test_an_applied_transaction_with_a_range_whose_answer_was_lost_is_unknown_not_guessed(
    server: AgentProcess, relay: Relay, remote: RemoteStore
) -> None:
    ops: list[Op] = [_put("lost-range", b"v1"), Range(schema.KVS.key("lost-range"))]
    relay.interrupt(b"lost-range")
    with pytest.raises(TxnOutcomeUnknownError, match=r"Range of 'kv/lost-range'.*cannot be read back"):
        await remote.txn([], ops)
    assert relay.interrupted.is_set()
    value, created, modified = _entry(server, "lost-range")
    assert (value, created) == (b"v1", modified)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
async def test_a_lease_ttl_that_is_not_positive_is_refused_before_it_is_sent(
    remote: RemoteStore, ttl: float
) -> None:
    with pytest.raises(ValueError, match="lease TTL must be a positive number of seconds"):
        await remote.lease_grant(ttl)


async def test_a_lost_answer_whose_history_the_server_no_longer_keeps_is_unknown_not_guessed(
    tmp_path: Path,
) -> None:
    """A restarted server keeps only the revisions after its start for client watches, so
    a store that last saw one before writes it never saw cannot learn the outcome."""
    args = [
        *("-server", "-bootstrap-expect", "1", "-bind", "127.0.0.1", "-node", "server-r"),
        *("-data-dir", str(tmp_path / "server")),
    ]
    with AgentProcess(args, log_path=tmp_path / "server.log") as server:
        relay = Relay(server.server_address).start()
        store = RemoteStore([relay.address])
        try:
            await store.revision()
            server.put("/v1/kv/unseen", "written while the store was not looking")
            server.stop()
            server.start(30)
            assert await store.get(schema.KVS.key("unseen")) is not None  # the server is back
            relay.interrupt(b"after-restart")
            with pytest.raises(TxnOutcomeUnknownError, match=r"outcome is unknown: .* compacted"):
                await store.txn([], [_put("after-restart", b"v1")])
        finally:
            await store.close()
            relay.close()
        assert relay.interrupted.is_set()
        value, created, modified = _entry(server, "after-restart")
        assert (value, created) == (b"v1", modified)


# -- the lean replica's stream ----------------------------------------------------------


async def test_a_cut_replica_stream_resumes_on_the_next_server_with_nothing_lost_or_repeated(
    server: AgentProcess, relay: Relay
) -> None:
    store = RemoteStore([relay.address, server.server_address], scope=[schema.KVS.key("follow/")])
    seen: list[str] = []
    three = asyncio.Event()

    async def follow(start: int) -> None:
        async for batch in store.watch("", start):
            seen.extend(ev.kv.key for ev in batch)
            if len(seen) >= 3:
                three.set()
            if len(seen) == 6:
                return

    try:
        task = asyncio.create_task(follow(await store.revision() + 1))
        for i in range(6):
            if i == 3:
                await asyncio.wait_for(three.wait(), 10)
                relay.cut()
            await asyncio.to_thread(server.put, f"/v1/kv/follow/{i}", b"v")
            await asyncio.to_thread(server.put, f"/v1/kv/unfollowed/{i}", b"v")
        await asyncio.wait_for(task, 20)
    finally:
        await store.close()
    assert seen == [schema.KVS.key(f"follow/{i}") for i in range(6)]


async def test_a_replica_stream_whose_history_is_gone_says_so() -> None:
    """A revision the server's ring no longer holds: the replica must re-read (410)."""
    with AgentProcess(["-dev", "-node", "ring"]) as agent:
        for i in range(3):
            agent.put(f"/v1/kv/ring/{i}", b"v")
        store = RemoteStore([agent.server_address], scope=[schema.KVS.key("ring/")])
        try:
            with pytest.raises(CompactedError):
                async for _ in store.watch("", 1):
                    pass
        finally:
            await store.close()
