"""A client agent's DNS names read from a real server through the relay a client agent
uses: a name not cached is Pending until read, then answered from the cache until it goes
stale; a server that stops answering leaves the stale answer in place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from waypost.agent.dns_backend import CatalogDnsBackend
from waypost.agent.lean_dns import ServerDnsBackend
from waypost.api.http import Request, Response
from waypost.dns.backend import Pending, PreparedResult
from waypost.state.state import State
from waypost.store.memory import MemoryStore
from waypost.store.remote import NO_SERVERS
from waypost.testing import AgentProcess, ManualClock, free_port
from waypost.wan.forward import CLIENT_HOP, Forwarder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("lean-dns")) / "agent.log"
    with AgentProcess(["-dev", "-node", "hub"], log_path=log) as agent:
        agent.put(
            "/v1/catalog/register",
            {
                "Node": "far",
                "Address": "192.0.2.5",
                "Service": {"Service": "Shop", "Port": 81, "Tags": ["V1"]},
            },
        )
        agent.put(
            "/v1/catalog/register",
            {
                "Node": "far",
                "Address": "192.0.2.5",
                "Service": {"ID": "db", "Service": "db", "Port": 5432},
                "Check": {"CheckID": "db-up", "Name": "up", "Status": "critical", "ServiceID": "db"},
            },
        )
        agent.request(
            "POST", "/v1/query", b'{"Name": "shopping", "Service": {"Service": "Shop"}, "DNS": {"TTL": "7s"}}'
        )
        yield agent


@pytest.fixture
async def local() -> AsyncIterator[CatalogDnsBackend]:
    state = State(MemoryStore())
    await state.start()
    yield CatalogDnsBackend(state, "dc1")
    await state.close()


@pytest.fixture
async def forwarder() -> AsyncIterator[Forwarder]:
    relay = Forwarder()
    yield relay
    await relay.close()


def _backend(
    local: CatalogDnsBackend, relay: Forwarder, urls: list[str], clock: ManualClock
) -> ServerDnsBackend:
    async def ask(req: Request) -> Response:
        return await relay.relay(urls, req, CLIENT_HOP, None, NO_SERVERS)

    return ServerDnsBackend(local, ask, lambda: "", fresh=5.0, clock=clock)


async def _read(backend: ServerDnsBackend, pending: object) -> None:
    assert isinstance(pending, Pending)
    await backend.fail_over(pending.query)


async def test_a_service_is_pending_then_answered_case_blind_with_its_health(
    server: AgentProcess, local: CatalogDnsBackend, forwarder: Forwarder
) -> None:
    clock = ManualClock()
    backend = _backend(local, forwarder, [server.url], clock)
    before = backend.revision()
    await _read(backend, backend.service_instances("shop", None))
    assert backend.revision() != before
    found = backend.service_instances("shop", None)
    assert not isinstance(found, Pending)
    assert [(i.service, i.node.name, i.address or i.node.address, i.port, i.status) for i in found] == [
        ("Shop", "far", "192.0.2.5", 81, "passing")
    ]
    assert backend.service_instances("shop", "v1") == found
    assert backend.service_instances("shop", "v2") == []
    await _read(backend, backend.service_instances("db", None))
    assert [i.status for i in backend.service_instances("db", None)] == ["critical"]  # type: ignore[union-attr]
    await _read(backend, backend.service_instances("nothing", None))
    assert backend.service_instances("nothing", None) == []


async def test_nodes_virtual_ips_and_prepared_queries(
    server: AgentProcess, local: CatalogDnsBackend, forwarder: Forwarder
) -> None:
    backend = _backend(local, forwarder, [server.url], ManualClock())
    await _read(backend, backend.node("far"))
    node = backend.node("far")
    assert node is not None
    assert not isinstance(node, Pending)
    assert node.address == "192.0.2.5"
    await _read(backend, backend.node("nowhere"))
    assert backend.node("nowhere") is None
    await _read(backend, backend.virtual_ip("nothing"))
    assert backend.virtual_ip("nothing") is None
    await _read(backend, backend.prepared_query("shopping"))
    result = backend.prepared_query("shopping")
    assert isinstance(result, PreparedResult)
    assert (result.service, result.ttl, [i.node.name for i in result.instances]) == ("Shop", 7.0, ["far"])
    await _read(backend, backend.prepared_query("unknown"))
    assert backend.prepared_query("unknown") is None


async def test_a_reverse_lookup_of_another_node_is_read_from_a_server(
    server: AgentProcess, local: CatalogDnsBackend, forwarder: Forwarder
) -> None:
    backend = _backend(local, forwarder, [server.url], ManualClock())
    await _read(backend, backend.nodes_by_address("192.0.2.5"))
    assert [n.name for n in backend.nodes_by_address("192.0.2.5")] == ["far"]  # type: ignore[union-attr]
    await _read(backend, backend.nodes_by_address("198.51.100.1"))
    assert backend.nodes_by_address("198.51.100.1") == []


async def test_an_entry_goes_stale_and_is_kept_while_no_server_answers(
    server: AgentProcess, local: CatalogDnsBackend, forwarder: Forwarder
) -> None:
    clock = ManualClock()
    urls = [server.url]
    backend = _backend(local, forwarder, urls, clock)
    await _read(backend, backend.service_instances("shop", None))
    seen = backend.revision()
    clock.now += 6
    assert backend.revision() != seen  # stale: the resolver's answers are built again
    pending = backend.service_instances("shop", None)
    urls[:] = [f"http://127.0.0.1:{free_port()}"]  # no server answers now
    await _read(backend, pending)
    kept = backend.service_instances("shop", None)
    assert not isinstance(kept, Pending)
    assert [i.node.name for i in kept] == ["far"]
