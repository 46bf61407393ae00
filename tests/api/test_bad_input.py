"""Bad input gets Consul's status codes and a message naming the problem; the agent keeps serving."""

from __future__ import annotations

import pytest

from waypost.testing import AgentProcess

CASES = [
    ("PUT", "/v1/agent/service/register", b"{not json", 400, b"Request decode failed"),
    ("PUT", "/v1/agent/service/register", b'{"Name": "x", "Port": "eighty"}', 400, b"Port"),
    ("PUT", "/v1/agent/service/register", b'{"Name": "x", "Bogus": 1}', 400, b"Bogus"),
    ("PUT", "/v1/agent/service/register", b'{"Port": 1}', 400, b"Missing service name"),
    ("PUT", "/v1/agent/service/register", b"[1, 2]", 400, b"JSON object"),
    (
        "PUT",
        "/v1/agent/check/register",
        b'{"Name": "c", "Interval": "abc", "HTTP": "http://x"}',
        400,
        b"Interval",
    ),
    ("PUT", "/v1/agent/check/pass/nope", b"", 404, b"Unknown check"),
    ("PUT", "/v1/kv/a?cas=1&acquire=x", b"", 400, b"Conflicting flags"),
    ("PUT", "/v1/kv/big", b"x" * (512 * 1024 + 1), 413, b"too large"),
    (
        "PUT",
        "/v1/kv/a?flags=minus",
        b"",
        400,
        b'Invalid flags: strconv.ParseUint: parsing "minus": invalid syntax',
    ),
    (
        "PUT",
        f"/v1/kv/a?cas={2**64}",
        b"",
        400,
        f'Invalid cas: strconv.ParseUint: parsing "{2**64}": value out of range'.encode(),
    ),
    ("GET", "/v1/kv/", b"", 400, b"Missing key name"),
    ("GET", "/v1/kv/a?index=abc", b"", 400, b"Invalid index"),
    ("GET", "/v1/kv/a?index=1&wait=forever", b"", 400, b"Invalid wait time"),
    ("GET", "/v1/health/service/x?filter=Service.ID%20%3D%3D", b"", 400, b"boolean expression"),
    ("GET", "/v1/health/state/sleepy", b"", 400, b"Invalid state"),
    ("GET", "/v1/no/such/path", b"", 404, b"404 page not found"),
    ("DELETE", "/v1/agent/self", b"", 405, b"not allowed"),
    ("PUT", "/v1/session/create", b'{"TTL": "1s"}', 400, b"Invalid Session TTL"),
    ("PUT", "/v1/session/create", b'{"Behavior": "explode"}', 400, b"Behavior"),
    ("PUT", "/v1/txn", b'[{"KV": {"Verb": "set", "Key": "k", "Value": "***"}}]', 400, b"base64"),
    ("PUT", "/v1/catalog/register", b'{"Node": "n"}', 400, b"Missing node address"),
    (
        "PUT",
        "/v1/catalog/register",
        b'{"Node": "n", "Address": "a", "TaggedAddresses": {"wan": 1}}',
        400,
        b"TaggedAddresses",
    ),
    ("PUT", "/v1/catalog/register", b'{"Node": "n", "Address": "a", "NodeMeta": {"k": 1}}', 400, b"NodeMeta"),
    (
        "PUT",
        "/v1/catalog/register",
        b'{"Node": "n", "Address": "a", "Service": {"Service": "s", "Port": 1.5}}',
        400,
        b"Port",
    ),
    (
        "PUT",
        "/v1/catalog/register",
        b'{"Node": "n", "Address": "a", "ID": 18446744073709551616}',
        400,
        b"out of range",
    ),
    ("PUT", "/v1/catalog/register", b"[" * 100_000, 400, b"nesting"),
    (
        "PUT",
        "/v1/agent/check/register",
        b'{"Name": "c", "TTL": "99999999999999999999h"}',
        400,
        b'invalid duration "99999999999999999999h"',
    ),
    ("PUT", "/v1/agent/check/register", b"null", 400, b"JSON object"),
    ("GET", "/v1/kv/a?index=%2B5", b"", 400, b"index"),
    ("GET", "/v1/kv/a?index=1_000", b"", 400, b"index"),
    ("GET", "/v1/kv/a?index=%D9%A3", b"", 400, b"index"),
    ("GET", "/v1/kv/a?index=18446744073709551616", b"", 400, b"index"),
    ("GET", "/v1/kv/a?index=1&wait=%201s", b"", 400, b"Invalid wait time"),
    ("PUT", "/v1/kv/%ff%fe", b"", 400, b"UTF-8"),
    ("PUT", "/v1/session/create", b'{"ServiceChecks": [1]}', 400, b"ServiceChecks"),
    ("PUT", "/v1/agent/check/update/x", b'{"Status": "passing", "Output": {"a": 1}}', 400, b"Output"),
    ("PUT", "/v1/agent/service/register", b'{"Name": "x", "Meta": {"consul-x": "1"}}', 400, b"reserved"),
    ("PUT", "/v1/agent/maintenance", b"", 400, b"enable"),
    ("PUT", "/v1/agent/maintenance?enable=yes", b"", 400, b'Invalid value for enable: "yes"'),
    ("PUT", "/v1/agent/service/maintenance/x?enable=tRuE", b"", 400, b'Invalid value for enable: "tRuE"'),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), CASES)
def test_bad_input(
    dev_agent: AgentProcess, method: str, path: str, body: bytes, status: int, message: bytes
) -> None:
    got_status, _, got_body = dev_agent.request(method, path, body or None)
    assert got_status == status, got_body
    assert message in got_body
    assert dev_agent.get("/v1/status/leader")


def test_malformed_http_is_refused_and_server_keeps_serving(dev_agent: AgentProcess) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", dev_agent.http_port), timeout=5) as s:
        s.sendall(b"GARBAGE\x00\x01 / HTTP/9\r\n\r\n")
        assert b"400" in s.recv(4096)
    assert dev_agent.get("/v1/status/leader")
