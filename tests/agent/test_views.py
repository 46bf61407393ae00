"""A client agent's health views against a real server, through the relay a client agent
uses: answers equal the server's own, byte for byte and index for index; a read blocking
on the view's index wakes on a write; bad input gets the server's 400; a view no server
feeds is not used; an idle view goes. (Through a client agent, with failover, restarts
and compaction: tests/e2e/test_client_reads.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from waypost.agent.views import VIEW_IDLE, Views
from waypost.api.http import Request, Response
from waypost.store.remote import NO_SERVERS
from waypost.testing import AgentProcess, ManualClock, free_port
from waypost.testing.waiting import until
from waypost.wan.forward import CLIENT_HOP, Forwarder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("views")) / "agent.log"
    with AgentProcess(["-dev", "-node", "hub"], log_path=log) as agent:
        for node, port, tags, rack, status in (
            ("n1", 80, ["v1", "Primary"], "r1", "passing"),
            ("n2", 81, ["v2"], "r2", "warning"),
            ("n3", 82, ["v1"], "r1", "critical"),
        ):
            agent.put(
                "/v1/catalog/register",
                {
                    "Node": node,
                    "Address": "192.0.2.1",
                    "NodeMeta": {"rack": rack},
                    "Service": {"ID": "web", "Service": "web", "Port": port, "Tags": tags},
                    "Check": {"CheckID": "alive", "Name": "alive", "Status": status, "ServiceID": "web"},
                },
            )
        agent.put(
            "/v1/catalog/register",
            {
                "Node": "n4",
                "Address": "192.0.2.4",
                "TaggedAddresses": {"wan": "198.51.100.4"},
                "Service": {
                    "ID": "web-rich", "Service": "web", "Port": 83, "Tags": ["v1"], "Meta": {"team": "a"},
                    "Address": "10.1.1.4", "EnableTagOverride": True, "Weights": {"Passing": 5, "Warning": 2},
                    "TaggedAddresses": {"lan": {"Address": "10.1.1.4", "Port": 83}},
                },
            },
        )  # fmt: skip
        agent.put(
            "/v1/catalog/register",
            {
                "Node": "n4",
                "Address": "192.0.2.4",
                "Service": {
                    "ID": "web-sidecar-proxy", "Service": "web-sidecar-proxy", "Kind": "connect-proxy",
                    "Port": 21000, "Proxy": {"DestinationServiceName": "web", "LocalServicePort": 83,
                    "Upstreams": [{"DestinationName": "db", "LocalBindPort": 9191}], "Config": {"x": 1}},
                },
            },
        )  # fmt: skip
        yield agent


class Client:
    """Views fed by ``server`` as a client agent's are, with a hand-turned clock."""

    def __init__(self, base: str) -> None:
        self.relay = Forwarder()
        self.base = base
        self.clock = ManualClock()
        self.views = Views(self.ask, clock=self.clock)

    async def ask(self, req: Request) -> Response:
        return await self.relay.relay([self.base], req, CLIENT_HOP, None, NO_SERVERS)

    async def read(self, service: str, query: str = "", area: str = "health") -> Response:
        req = Request("GET", f"/v1/{area}/service/{service}", query, {}, b"")
        req.param = service
        return await self.views.read(req, lambda: self.ask(req))

    async def close(self) -> None:
        await self.views.close()
        await self.relay.close()


@pytest.fixture
async def client(server: AgentProcess) -> AsyncIterator[Client]:
    made = Client(server.url)
    yield made
    await made.close()


def _index(resp: Response) -> int:
    return int(next(v for k, v in resp.headers if k == "X-Consul-Index"))


@pytest.mark.parametrize(
    "query",
    ["", "passing", "tag=v1", "tag=v1&tag=primary", "node-meta=rack:r1", "passing=false",
     "filter=" + quote('Service.Port != 80 and "v1" in Service.Tags'),
     "filter=" + quote("Node.Meta.rack == r2")],
)  # fmt: skip
@pytest.mark.parametrize("area", ["health", "catalog"])
@pytest.mark.parametrize("service", ["web", "web-sidecar-proxy"])
async def test_an_answer_is_the_servers_byte_for_byte(
    server: AgentProcess, client: Client, query: str, area: str, service: str
) -> None:
    if area == "catalog" and query.startswith("passing"):
        query = ""  # the catalog's instances take no health filter
    if area == "catalog" and query.startswith("filter="):
        query = "filter=" + quote('ServicePort != 80 and "v1" in ServiceTags')
    path = f"/v1/{area}/service/{service}"
    status, headers, body = server.request("GET", f"{path}?{query}")
    resp = await client.read(service, f"{query}&index=1" if query else "index=1", area)
    assert (resp.status, resp.body, _index(resp)) == (status, body, int(headers["X-Consul-Index"]))
    assert client.views.answered == 1


async def test_a_read_blocking_on_the_views_index_wakes_on_a_write(
    server: AgentProcess, client: Client
) -> None:
    first = await client.read("api", "index=1")
    assert first.body == b"[]"
    woken = asyncio.ensure_future(client.read("api", f"index={_index(first)}&wait=30s"))
    await asyncio.sleep(0.2)
    assert not woken.done()
    server.put("/v1/catalog/register", {"Node": "n9", "Address": "192.0.2.9", "Service": {"Service": "api"}})
    resp = await asyncio.wait_for(woken, 20)
    assert _index(resp) > _index(first)
    assert [e["Node"]["Node"] for e in json.loads(resp.body)] == ["n9"]
    server.put("/v1/catalog/deregister", {"Node": "n9"})


async def test_a_blocking_read_that_times_out_answers_the_same_index(client: Client) -> None:
    first = await client.read("web", "index=1")
    again = await client.read("web", f"index={_index(first)}&wait=100ms")
    assert (_index(again), again.body) == (_index(first), first.body)


@pytest.mark.parametrize(
    ("query", "message"),
    [("index=abc", b"Invalid index"), ("index=1&wait=forever", b"Invalid wait time"),
     ("index=1&filter=" + quote("Service.Port =="), b"Failed to create boolean expression evaluator")],
)  # fmt: skip
async def test_bad_input_gets_the_servers_400(
    server: AgentProcess, client: Client, query: str, message: bytes
) -> None:
    resp = await client.read("web", query)
    status, _, body = server.request("GET", f"/v1/health/service/web?{query}")
    assert (resp.status, status) == (400, 400)
    assert message in resp.body
    assert resp.body == body


async def test_with_no_server_to_feed_it_the_read_is_relayed() -> None:
    lost = Client(f"http://127.0.0.1:{free_port()}")
    try:
        resp = await lost.read("web", "index=1")
        assert (resp.status, resp.body) == (500, NO_SERVERS.encode())
        assert lost.views.answered == 0
    finally:
        await lost.close()


async def test_a_cached_read_is_a_miss_then_a_hit(client: Client) -> None:
    req = Request("GET", "/v1/health/service/web", "cached", {}, b"")
    req.param = "web"
    miss = await client.views.cached(req, lambda: client.ask(req))
    hit = await client.views.cached(req, lambda: client.ask(req))
    assert (miss[1], hit[1]) == (None, 0.0)
    assert miss[0].body == hit[0].body


async def test_an_idle_view_is_dropped_and_its_stream_closed(server: AgentProcess, client: Client) -> None:
    await client.read("web", "index=1")
    assert len(client.views) == 1
    client.clock.now += VIEW_IDLE + 1
    server.put("/v1/catalog/register", {"Node": "n8", "Address": "192.0.2.8", "Service": {"Service": "web"}})
    await until(lambda: len(client.views) == 0, 10)
    await until(lambda: _readers(server) == 0, 10)
    server.put("/v1/catalog/deregister", {"Node": "n8"})


def _readers(server: AgentProcess) -> float:
    gauges = server.get("/v1/agent/metrics")["Gauges"]
    return float(next(g["Value"] for g in gauges if g["Name"] == "waypost.stream.readers"))


async def test_the_service_names_come_from_a_view_as_the_server_lists_them(
    server: AgentProcess, client: Client
) -> None:
    req = Request("GET", "/v1/catalog/services", "index=1", {}, b"")
    status, headers, body = server.request("GET", "/v1/catalog/services")
    resp = await client.views.read(req, lambda: client.ask(req))
    assert (resp.status, resp.body, _index(resp)) == (status, body, int(headers["X-Consul-Index"]))
    woken = client.views.read(
        Request("GET", "/v1/catalog/services", f"index={_index(resp)}", {}, b""), _unused
    )
    server.put(
        "/v1/catalog/register", {"Node": "n7", "Address": "192.0.2.7", "Service": {"Service": "fresh"}}
    )
    assert "fresh" in json.loads((await asyncio.wait_for(woken, 20)).body)
    server.put("/v1/catalog/deregister", {"Node": "n7"})
    assert client.views.answered == 2


@pytest.mark.parametrize("query", ["filter=ServiceName%20%3D%3D%20web", "node-meta=rack:r1", "consistent"])
def test_filtered_service_names_and_consistent_reads_are_not_taken_from_views(query: str) -> None:
    assert not Views(_unused).serves(Request("GET", "/v1/catalog/services", query, {}, b""), "dc1")


def _unused() -> Response:
    raise AssertionError("answered from the view, never relayed")


@pytest.mark.parametrize("query", ["recurse", "keys", "keys&separator=/", "recurse&raw", "keys&seperator=/"])
@pytest.mark.parametrize("prefix", ["app/", "app/db", "", "none/"])
async def test_a_kv_prefix_is_answered_as_the_server_answers_it(
    server: AgentProcess, client: Client, prefix: str, query: str
) -> None:
    for key in ("app/db/host", "app/db/port", "app/web", "apple", "zzz"):
        server.put(f"/v1/kv/{key}", key.encode())
    path = f"/v1/kv/{prefix}"
    status, headers, body = server.request("GET", f"{path}?{query}")
    req = Request("GET", path, f"{query}&index=1", {}, b"")
    req.param = prefix
    assert client.views.takes(req, "dc1")
    resp = await client.views.read(req, lambda: client.ask(req))
    assert (resp.status, resp.body, _index(resp)) == (status, body, int(headers["X-Consul-Index"]))
    woken = client.views.read(_kv_read(prefix, f"{query}&index={_index(resp)}"), lambda: client.ask(req))
    server.put(f"/v1/kv/{prefix}new", b"x")
    after = await asyncio.wait_for(woken, 20)
    assert after.status == 200
    assert _index(after) > _index(resp)
    server.request("DELETE", f"/v1/kv/{prefix}new")


def _kv_read(prefix: str, query: str) -> Request:
    req = Request("GET", f"/v1/kv/{prefix}", query, {}, b"")
    req.param = prefix
    return req


def test_kv_prefixes_are_relayed_when_acls_are_on() -> None:
    views = Views(_unused, "deny", acl_enabled=True)
    assert not views.serves(_kv_read("app/", "recurse&index=1"), "dc1")
    assert views.serves(Request("GET", "/v1/catalog/services", "index=1", {}, b""), "dc1")
