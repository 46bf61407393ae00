"""/v1/internal/wan/exchange on a real agent: bad input is a 400 naming the field; a good
one teaches the server of the sender and answers with whom the server knows."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from waypost.testing import AgentProcess


def exchange(agent: AgentProcess, body: bytes) -> tuple[int, bytes]:
    status, _, answer = agent.request("PUT", "/v1/internal/wan/exchange", body)
    return status, answer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", b"Request decode failed: Input data was truncated"),
        (b"[]", b"Request decode failed: Expected `object`, got `array`"),
        (b'{"Servers": []}', b"Request decode failed: Object missing required field `Self`"),
        (b'{"Self": {"Name": "x", "Datacenter": "dc2", "URL": 5}}',
         b"Request decode failed: Expected `str`, got `int` - at `$.Self.URL`"),
        (b'{"Self": {"Name": "", "Datacenter": "dc2", "URL": "http://h:1"}}', b"Invalid Self: Name is empty"),
        (b'{"Self": {"Name": "x", "Datacenter": "dc2", "URL": "http://h:1"},'
         b' "Servers": [{"Name": "y", "Datacenter": "d c", "URL": "http://h:2"}]}',
         b"Invalid Servers[0]: Datacenter 'd c' is not a datacenter name"),
    ],
)  # fmt: skip
def test_bad_exchanges_are_refused_naming_the_field(
    dev_agent: AgentProcess, body: bytes, message: bytes
) -> None:
    assert exchange(dev_agent, body) == (400, message)


def test_an_exchange_teaches_the_server_of_the_sender_and_answers_with_itself(
    dev_agent: AgentProcess,
) -> None:
    peer = {
        "Self": {"Name": "far", "Datacenter": "dc-far", "URL": "http://127.0.0.1:1", "DNS": "127.0.0.1:2"}
    }
    status, answer = exchange(dev_agent, json.dumps(peer).encode())
    assert status == 200
    me = json.loads(answer)["Self"]
    assert (me["Name"], me["Datacenter"], me["URL"]) == (
        "test-node",
        "dc1",
        f"http://127.0.0.1:{dev_agent.http_port}",
    )
    assert me["DNS"] == f"127.0.0.1:{dev_agent.dns_port}"
    members = {m["Name"]: m["Tags"]["dc"] for m in dev_agent.get("/v1/agent/members?wan=1")}
    assert members == {"test-node.dc1": "dc1", "far.dc-far": "dc-far"}
    assert dev_agent.get("/v1/catalog/datacenters") == ["dc1", "dc-far"]
    assert dev_agent.get("/v1/agent/self")["Stats"]["consul"]["known_datacenters"] == "2"


def test_the_view_is_what_the_server_knows_and_teaches_it_nothing(dev_agent: AgentProcess) -> None:
    view = dev_agent.get("/v1/internal/wan/exchange")
    assert view["Self"]["Name"] == "test-node"
    before = dev_agent.get("/v1/agent/members?wan=1")
    assert dev_agent.get("/v1/internal/wan/exchange")["Servers"] == view["Servers"]
    assert dev_agent.get("/v1/agent/members?wan=1") == before


def test_a_request_a_server_already_forwarded_is_not_forwarded_again(dev_agent: AgentProcess) -> None:
    """The WAN pool of the server that sent it was wrong: no second hop, no loop."""
    req = urllib.request.Request(
        f"{dev_agent.url}/v1/kv/k?dc=dc-far", headers={"X-Waypost-Forwarded": "server"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=10)
    assert (refused.value.code, refused.value.read()) == (500, b"No path to datacenter")
    assert dev_agent.request("GET", "/v1/kv/k?dc=dc-unknown")[::2] == (500, b"No path to datacenter")
