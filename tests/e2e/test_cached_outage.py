"""``?cached`` on a client agent whose server is gone: one client agent joined to a dev
server, reads made while the server runs, then the server stopped. The client's entry
still answers a background-refresh read as a HIT, its ``Age`` now the seconds since its
refresh last reached a server; a simply-cached answer (the datacenter list, which the
client asks the server for) is served stale only with ``stale-if-error``, as Consul's is."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from waypost.testing import AgentProcess, wait_for

STALE_OK = {"Cache-Control": "max-age=0, stale-if-error=600"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, bytes]]:
    """The client agent once its server is stopped, and the datacenter list it was given."""
    tmp = tmp_path_factory.mktemp("cached-outage")
    server = AgentProcess(["-dev", "-node", "cache-server"], log_path=tmp / "server.log").start()
    args = [
        *("-data-dir", str(tmp / "client"), "-bind", "127.0.0.1", "-node", "cache-client"),
        *("-retry-join", server.server_address, "-retry-interval", "1s"),
    ]
    agent = AgentProcess(args, log_path=tmp / "client.log")
    try:
        agent.start(timeout=30)
        server.put(
            "/v1/catalog/register", {"Node": "ext", "Address": "10.0.0.1", "Service": {"Service": "web"}}
        )
        wait_for(lambda: len(agent.get("/v1/health/service/web")) == 1)
        status, headers, _ = agent.request("GET", "/v1/health/service/web?cached")
        assert (status, headers["X-Cache"]) == (200, "MISS")
        status, headers, _ = agent.request("GET", "/v1/health/service/web?cached")
        assert (status, headers["X-Cache"], headers["Age"]) == (200, "HIT", "0")
        status, headers, datacenters = agent.request("GET", "/v1/catalog/datacenters?cached")
        assert (status, headers["X-Cache"], json.loads(datacenters)) == (200, "MISS", ["dc1"])
        server.stop()
        wait_for(lambda: int(agent.request("GET", "/v1/health/service/web?cached")[1].get("Age", "0")) >= 2)
        yield agent, datacenters
    finally:
        agent.stop()
        server.stop()


def test_background_refresh_answers_with_the_time_since_the_store_was_heard(
    client: tuple[AgentProcess, bytes],
) -> None:
    agent, _ = client
    status, headers, body = agent.request("GET", "/v1/health/service/web?cached")
    assert (status, headers["X-Cache"]) == (200, "HIT")
    assert int(headers["Age"]) >= 2
    assert [e["Node"]["Address"] for e in json.loads(body)] == ["10.0.0.1"]


def test_simple_caching_serves_stale_only_when_asked(client: tuple[AgentProcess, bytes]) -> None:
    agent, datacenters = client
    status, _, _ = agent.request(
        "GET", "/v1/catalog/datacenters?cached", headers={"Cache-Control": "max-age=0"}
    )
    assert status == 500
    status, headers, body = agent.request("GET", "/v1/catalog/datacenters?cached", headers=STALE_OK)
    assert (status, headers["X-Cache"], body) == (200, "HIT", datacenters)
    assert int(headers["Age"]) >= 1
