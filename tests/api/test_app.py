"""Dispatch through the route table over real HTTP: params with slashes, methods, ?pretty."""

from __future__ import annotations

import json

from waypost.testing import AgentProcess


def test_kv_keys_keep_their_slashes_and_encoding(dev_agent: AgentProcess) -> None:
    assert dev_agent.put("/v1/kv/deep/a%20b/c", b"v") is True
    assert dev_agent.get("/v1/kv/deep/a%20b/c")[0]["Key"] == "deep/a b/c"


def test_methods_and_options(dev_agent: AgentProcess) -> None:
    status, headers, _ = dev_agent.request("OPTIONS", "/v1/kv/x")
    assert status == 200
    assert set(headers["Allow"].split(", ")) == {"GET", "PUT", "POST", "DELETE"}
    assert dev_agent.request("PATCH", "/v1/kv/x")[0] == 405


def test_pretty_indents_the_same_json(dev_agent: AgentProcess) -> None:
    _, _, plain = dev_agent.request("GET", "/v1/catalog/nodes")
    _, _, pretty = dev_agent.request("GET", "/v1/catalog/nodes?pretty")
    assert b"\n    " in pretty
    assert json.loads(pretty) == json.loads(plain)


def test_pipelined_requests_are_answered_in_order(dev_agent: AgentProcess) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", dev_agent.http_port), timeout=5) as s:
        s.sendall(
            b"PUT /v1/kv/pipe HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
            b"GET /v1/kv/pipe?raw HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b"true") < data.index(b"\r\n\r\none") < data.index(b'"127.0.0.1')
