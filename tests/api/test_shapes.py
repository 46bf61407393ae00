"""Every read's answer has exactly the fields ``waypost.api.shapes`` declares, each present,
left out or ``null`` by its rule, against a real agent holding records with both empty and
filled optional fields; and the committed field reference is the generated one."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from waypost.api import shapes
from waypost.api.routes import READ, ROUTES
from waypost.api.shapes import Answer, Container, Presence
from waypost.state import model
from waypost.testing import AgentProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "api-fields.md"

NEVER_EMPTY = {("AgentService", "Datacenter"), ("AgentUpstream", "DestinationType"), ("Intention", "Action")}
"""Optional fields this agent always fills: Consul's datacenter is never empty, an upstream's
type defaults to ``service`` at registration, and only L4 intentions (with an Action) exist."""
NEVER_FILLED = {("AgentCheckDefinition", "Header")}
"""Fields Consul's own code leaves empty in these answers, so waypost does too (besides the
fields typed ``None``, which are always ``null``)."""

Seen = dict[tuple[str, str], set[str]]


def _empty(value: Any) -> bool:
    return value is None or value in ("", 0, False, [], {})


def _check(record: Any, shape: type[msgspec.Struct], where: str, seen: Seen) -> None:
    assert isinstance(record, dict), f"{where}: {record!r} is not an object"
    rules = shapes.presence(shape)
    assert set(record) <= set(rules), (
        f"{where}: fields {set(record) - set(rules)} are not in {shape.__name__}"
    )
    inner = shapes.nested(shape)
    for name, rule in rules.items():
        here = f"{where}.{name}"
        if rule is Presence.ALWAYS:
            assert name in record, f"{here} must always be present"
            assert record[name] is not None, f"{here} must never be null"
        elif rule is Presence.NULL:
            assert name in record, f"{here} must be present (null when empty)"
            assert record[name] is None or not _empty(record[name]), f"{here} is empty but not null"
        else:
            assert name not in record or not _empty(record[name]), f"{here} is empty but not omitted"
        value = record.get(name)
        seen[(shape.__name__, name)].add("empty" if _empty(value) else "filled")
        if name in inner and value is not None:
            container, nested = inner[name]
            items: Any = [value] if container is Container.ONE else value
            for i, item in enumerate(items.values() if container is Container.MAP else items):
                _check(item, nested, f"{here}[{i}]", seen)


def _records(body: Any, answer: Answer) -> Iterator[Any]:
    if answer is Answer.LIST:
        assert isinstance(body, list)
        yield from body
    elif answer is Answer.MAP:
        assert isinstance(body, dict)
        yield from body.values()
    elif body is not None:
        yield body


@pytest.fixture(scope="module")
def requests(dev_agent: AgentProcess) -> dict[str, list[str]]:
    """Records with optional fields both empty and filled, and the reads that show them,
    keyed by the route each read is."""
    a = dev_agent
    a.put(
        "/v1/agent/service/register",
        {
            "Name": "web",
            "Tags": ["v1"],
            "Meta": {"team": "a"},
            "Port": 80,
            "Address": "10.0.0.1",
            "TaggedAddresses": {"lan": {"Address": "10.0.0.1", "Port": 80}},
            "Check": {"TTL": "30s"},
        },
    )
    a.put("/v1/agent/service/register", {"Name": "bare", "Check": {"TTL": "30s"}})
    a.put("/v1/agent/service/register", {"Name": "gw", "Kind": "mesh-gateway", "Port": 8443})
    a.put("/v1/agent/check/register", {"Name": "node-ttl", "TTL": "30s"})
    full_upstream = {
        "DestinationType": "prepared_query",
        "DestinationNamespace": "default",
        "DestinationPartition": "default",
        "DestinationPeer": "peer",
        "DestinationName": "db",
        "Datacenter": "dc2",
        "LocalBindAddress": "127.0.0.2",
        "LocalBindPort": 9191,
        "LocalBindSocketMode": "0600",
        "Config": {"connect_timeout_ms": 100},
        "MeshGateway": {"Mode": "local"},
    }
    proxy = {
        "DestinationServiceName": "web",
        "DestinationServiceID": "web",
        "LocalServiceAddress": "127.0.0.1",
        "LocalServicePort": 80,
        "LocalServiceSocketPath": "/run/web.sock",
        "Mode": "transparent",
        "Config": {"protocol": "tcp"},
        "TransparentProxy": {"OutboundListenerPort": 15001},
        "AccessLogs": {"Enabled": True},
        "Upstreams": [full_upstream, {"DestinationName": "cache", "LocalBindSocketPath": "/run/cache.sock"}],
    }
    locality = {"Region": "r1", "Zone": "z1"}
    a.put(
        "/v1/agent/service/register",
        {"Name": "web-proxy", "Kind": "connect-proxy", "Port": 21000, "Locality": locality, "Proxy": proxy},
    )
    a.put("/v1/agent/service/register", {"Name": "native", "Port": 81, "Connect": {"Native": True}})
    _, _, created = a.request(
        "POST",
        "/v1/connect/intentions",
        json.dumps(
            {
                "SourceName": "web",
                "DestinationName": "db",
                "Action": "allow",
                "Description": "d",
                "Meta": {"k": "v"},
            }
        ).encode(),
    )
    a.request("PUT", "/v1/connect/intentions/exact?source=*&destination=db", b'{"Action": "deny"}')
    a.put(
        "/v1/catalog/register",
        {"Node": "ext", "Address": "10.0.0.2", "Service": {"Service": "web", "ID": "web-ext"}},
    )
    a.put(
        "/v1/catalog/register",
        {
            "Node": "ext2",
            "Address": "10.0.0.3",
            "TaggedAddresses": {"wan": "1.2.3.4"},
            "NodeMeta": {"r": "1"},
        },
    )
    a.put("/v1/agent/check/pass/service:web")
    plain = a.put("/v1/session/create", {})["ID"]
    a.put("/v1/session/create", {"ServiceChecks": [{"ID": "service:web"}]})
    a.put("/v1/kv/full", b"value")
    a.put("/v1/kv/empty", b"")
    a.put(f"/v1/kv/locked?acquire={plain}", b"x")
    a.put("/v1/event/fire/deploy", b"payload")
    a.put("/v1/event/fire/bare")
    a.put("/v1/coordinate/update", {"Node": "test-node", "Coord": {"Vec": [0.1] * 8, "Error": 1.0}})
    queries = [
        {"Name": "bare-q", "Service": {"Service": "web"}},
        {
            "Name": "full-q",
            "Service": {
                "Service": "web",
                "IgnoreCheckIDs": ["c"],
                "Tags": ["v1"],
                "NodeMeta": {"a": "b"},
                "ServiceMeta": {"c": "d"},
                "Failover": {"Datacenters": ["dc2"]},
            },
        },
        {
            "Name": "targets-q",
            "Service": {"Service": "web", "Failover": {"Targets": [{"Datacenter": "dc2"}]}},
        },
    ]
    query_ids = [json.loads(a.request("POST", "/v1/query", json.dumps(q).encode())[2])["ID"] for q in queries]
    return {
        "/v1/agent/services": ["/v1/agent/services"],
        "/v1/agent/service/:id": ["/v1/agent/service/web", "/v1/agent/service/bare", "/v1/agent/service/gw"],
        "/v1/agent/checks": ["/v1/agent/checks"],
        "/v1/catalog/connect/:service": ["/v1/catalog/connect/web", "/v1/catalog/connect/native"],
        "/v1/health/connect/:service": ["/v1/health/connect/web", "/v1/health/connect/native"],
        "/v1/health/ingress/:service": ["/v1/health/ingress/web"],
        "/v1/connect/intentions": ["/v1/connect/intentions"],
        "/v1/connect/intentions/exact": [
            "/v1/connect/intentions/exact?source=web&destination=db",
            "/v1/connect/intentions/exact?source=*&destination=db",
        ],
        "/v1/connect/intentions/:id": [f"/v1/connect/intentions/{json.loads(created)['ID']}"],
        "/v1/agent/health/service/id/:id": [
            "/v1/agent/health/service/id/web",
            "/v1/agent/health/service/id/bare",
            "/v1/agent/health/service/id/gw",
            "/v1/agent/health/service/id/nope",
        ],
        "/v1/agent/health/service/name/:name": ["/v1/agent/health/service/name/web"],
        "/v1/agent/members": ["/v1/agent/members"],
        "/v1/catalog/nodes": ["/v1/catalog/nodes"],
        "/v1/catalog/service/:name": ["/v1/catalog/service/web", "/v1/catalog/service/bare"],
        "/v1/catalog/node/:node": [
            "/v1/catalog/node/test-node",
            "/v1/catalog/node/ext",
            "/v1/catalog/node/nope",
        ],
        "/v1/catalog/node-services/:node": [
            "/v1/catalog/node-services/test-node",
            "/v1/catalog/node-services/ext2",
            "/v1/catalog/node-services/nope",
        ],
        "/v1/health/node/:node": ["/v1/health/node/test-node"],
        "/v1/health/checks/:service": ["/v1/health/checks/web"],
        "/v1/health/state/:state": ["/v1/health/state/any"],
        "/v1/health/service/:service": ["/v1/health/service/web", "/v1/health/service/bare"],
        "/v1/kv/:key": ["/v1/kv/?recurse"],
        "/v1/session/info/:id": [f"/v1/session/info/{plain}"],
        "/v1/session/node/:node": ["/v1/session/node/test-node"],
        "/v1/session/list": ["/v1/session/list"],
        "/v1/event/list": ["/v1/event/list"],
        "/v1/coordinate/nodes": ["/v1/coordinate/nodes"],
        "/v1/coordinate/node/:node": ["/v1/coordinate/node/test-node"],
        "/v1/query": ["/v1/query"],
        "/v1/query/:id": [f"/v1/query/{qid}" for qid in query_ids],
    }


def test_every_read_route_is_described() -> None:
    reads = {path for methods, path, _ in ROUTES if methods == READ}
    described = [e.path for e in shapes.ENDPOINTS] + list(shapes.OTHER_READS)
    assert sorted(described) == sorted(reads)


def test_every_answer_has_exactly_its_shapes_fields(
    dev_agent: AgentProcess, requests: dict[str, list[str]]
) -> None:
    assert sorted(requests) == sorted(e.path for e in shapes.ENDPOINTS)
    seen: Seen = defaultdict(set)
    for endpoint in shapes.ENDPOINTS:
        for path in requests[endpoint.path]:
            status, _, raw = dev_agent.request("GET", path)
            assert status in (200, 404, 429, 503), (path, status, raw)
            body = json.loads(raw) if raw else None
            if status == 404 and endpoint.missing is not None:
                _check(body, endpoint.missing, path, seen)
                continue
            for i, record in enumerate(_records(body, endpoint.answer)):
                _check(record, endpoint.shape, f"{path}[{i}]", seen)
    declared = {s.__name__: s for s in _all_shapes()}
    for (shape, name), states in seen.items():
        rule = shapes.presence(declared[shape])[name]
        if rule is Presence.ALWAYS:
            continue
        types = {f.encode_name: f.type for f in msgspec.structs.fields(declared[shape])}
        always_null = types[name] is type(None)
        wanted = {"empty", "filled"} - ({"empty"} if (shape, name) in NEVER_EMPTY else set())
        wanted -= {"filled"} if (shape, name) in NEVER_FILLED or always_null else set()
        assert wanted <= states, f"{shape}.{name} ({rule.value}) was only ever {states}"


def _all_shapes() -> Iterator[type[msgspec.Struct]]:
    pending = [shape for e in shapes.ENDPOINTS for shape in (e.shape, e.missing) if shape is not None]
    while pending:
        shape = pending.pop()
        yield shape
        pending += [inner for _, inner in shapes.nested(shape).values()]


def test_a_filtered_node_services_list_is_empty_rather_than_null(
    dev_agent: AgentProcess, requests: dict[str, list[str]]
) -> None:
    """Consul's filter always builds a new list, so only an unfiltered read says ``null``."""
    path = "/v1/catalog/node-services/ext2"
    assert dev_agent.get(path)["Services"] is None
    assert dev_agent.get(f"{path}?filter=Port%20%3D%3D%2080")["Services"] == []
    assert (
        dev_agent.get("/v1/catalog/node-services/test-node?filter=Service%20%3D%3D%20nope")["Services"] == []
    )


def test_a_stored_node_with_both_maps_encodes_as_the_node_shape() -> None:
    """``shapes.node`` hands out the stored record itself when neither map is empty."""
    stored = model.Node(ID="i", Node="n", Address="a", TaggedAddresses={"lan": "a"}, Meta={"k": "v"})
    assert shapes.node(stored) is stored
    shaped = shapes.Node("i", "n", "a", "dc1", {"lan": "a"}, {"k": "v"}, 0, 0)
    assert msgspec.json.encode(stored) == msgspec.json.encode(shaped)


def test_the_agent_health_of_an_unknown_service_is_consuls_json(dev_agent: AgentProcess) -> None:
    status, _, raw = dev_agent.request("GET", "/v1/agent/health/service/id/missing")
    assert status == 404
    assert json.loads(raw) == {"AggregatedStatus": "critical", "Service": None, "Checks": None}


def test_the_field_reference_is_generated_from_the_shapes() -> None:
    out = io.StringIO()
    shapes.render(lambda line: print(line, file=out))
    assert DOC.read_text() == out.getvalue(), "run: python3 -m waypost.api.shapes > docs/api-fields.md"
