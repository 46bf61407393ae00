"""A lean client agent relaying more parked blocking queries than a server lets one address
hold: the server, at Consul's default ``http_max_conns_per_client`` of 200, answers all 250
relays, while a plain caller from the same host is still cut off at 200 connections.

One etcd member, one server agent and one client agent, every one on 127.0.0.1. The
watchers reach the client agent from two other loopback addresses, 125 each, so the
client agent's own default cap (which applies to its callers) is not what is tested.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from etcd_cluster import etcd_available, servers_and_client
from waypost.testing import AgentProcess

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd-server is not installed"),
]

WATCHERS = 250
CAP = 200
TOO_MANY = b"HTTP/1.1 429 Too Many Requests\r\n"


@dataclass
class Pair:
    server: AgentProcess
    client: AgentProcess


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with servers_and_client(tmp_path_factory.mktemp("relays"), ("hub",), "spoke") as (_, [server], client):
        yield Pair(server, client)


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP answer's status line and body (by its Content-Length)."""
    status = await reader.readline()
    length = 0
    for _ in range(100):
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length) if length else b""


async def _watch(port: int, source: str, index: int) -> tuple[bytes, bytes]:
    """A watcher's blocking query on the client agent, from the loopback address ``source``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(b"GET /v1/kv/relayed?raw&index=%d&wait=60s HTTP/1.1\r\nHost: x\r\n\r\n" % index)
        return await asyncio.wait_for(_answer(reader), 90)
    finally:
        writer.close()


async def _plain_callers(port: int) -> list[bytes]:
    """The status lines of ``CAP + 1`` keep-alive connections to the server, all held open
    until the last is answered. A relay that has connected but not yet sent its request
    holds a slot for that moment, so a round that met a 429 early is tried again."""
    statuses: list[bytes] = []
    for _ in range(20):
        statuses, writers = [], []
        try:
            for _ in range(CAP + 1):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writers.append(writer)
                writer.write(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
                statuses.append((await asyncio.wait_for(_answer(reader), 30))[0])
        finally:
            for writer in writers:
                writer.close()
        if all(status.startswith(b"HTTP/1.1 200") for status in statuses[:CAP]):
            break
        await asyncio.sleep(0.5)
    return statuses


async def _scenario(pair: Pair, index: int) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    sources = ("127.0.0.2", "127.0.0.3")
    watchers = [
        asyncio.create_task(_watch(pair.client.http_port, sources[i % 2], index)) for i in range(WATCHERS)
    ]
    statuses = await _plain_callers(pair.server.http_port)
    await asyncio.to_thread(pair.client.put, "/v1/kv/relayed", b"changed")  # relayed too
    answers = await asyncio.wait_for(asyncio.gather(*watchers), 120)
    return answers, statuses


def test_a_client_agents_relays_pass_the_cap_that_plain_callers_meet(pair: Pair) -> None:
    pair.server.put("/v1/kv/relayed", b"initial")
    index = int(pair.server.request("GET", "/v1/kv/relayed")[1]["X-Consul-Index"])
    answers, statuses = asyncio.run(_scenario(pair, index))
    assert [status for status, _ in answers] == [b"HTTP/1.1 200 OK\r\n"] * WATCHERS
    assert {body for _, body in answers} == {b"changed"}
    assert all(status.startswith(b"HTTP/1.1 200") for status in statuses[:CAP])
    assert statuses[CAP] == TOO_MANY
