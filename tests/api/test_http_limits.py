"""What one client may cost a real agent's HTTP server: header bytes, body bytes, half-sent
and idle connections, and connections per client address. Each limit is pushed past with
raw sockets, and the agent must refuse as Consul (Go's net/http) does and keep serving."""

from __future__ import annotations

import contextlib
import http.client
import json
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from waypost.testing import AgentProcess

GIB_46 = 46 * 1024 * 1024
TOO_MANY = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 81\r\n"
    b"Connection: close\r\n\r\n"
    b"Your IP is issuing too many concurrent connections, please rate limit your calls\n"
)


@contextlib.contextmanager
def agent_with(tmp_path: Path, hcl: str) -> Iterator[AgentProcess]:
    with AgentProcess(["-dev", "-node", "limits", "-hcl", hcl], log_path=tmp_path / "agent.log") as agent:
        yield agent


def connect(agent: AgentProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", agent.http_port), timeout=10)


def read_all(sock: socket.socket, limit: float = 10.0) -> bytes:
    """Everything the server sends until it closes (a reset counts as closed)."""
    sock.settimeout(limit)
    out = b""
    for _ in range(10_000):
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def exchange(agent: AgentProcess, raw: bytes) -> bytes:
    with connect(agent) as sock:
        sock.sendall(raw)
        return read_all(sock)


def rss_kib(agent: AgentProcess) -> int:
    assert agent.proc is not None
    for line in Path(f"/proc/{agent.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """Default limits, except a small body cap so that going past it is cheap."""
    tmp = tmp_path_factory.mktemp("limits")
    with agent_with(tmp, "http_config { max_body_bytes = 1048576 }") as proc:
        yield proc


def test_a_46_mb_header_is_refused_with_431_and_not_buffered(agent: AgentProcess) -> None:
    before = rss_kib(agent)
    sent = 0
    answer = b""
    with connect(agent) as sock:
        sock.sendall(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        chunk = b"a" * 65536
        while sent < GIB_46 and not sel.select(0):
            try:
                sent += sock.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        sel.close()
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert answer.endswith(b"\r\n\r\n431 Request Header Fields Too Large")
    assert b"Connection: close" in answer
    assert sent < GIB_46
    # The head was dropped as it came: the agent did not grow by anything near 46 MB.
    assert rss_kib(agent) - before < 16 * 1024
    assert agent.get("/v1/status/leader")


def test_headers_just_under_one_mib_are_served(agent: AgentProcess) -> None:
    big = b"b" * (1024 * 1024 - 200)
    answer = exchange(
        agent, b"GET /v1/status/leader HTTP/1.1\r\nX-Big: " + big + b"\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_an_announced_body_over_the_cap_is_refused_before_it_is_sent(agent: AgentProcess) -> None:
    head = b"PUT /v1/agent/service/register HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
    answer = exchange(agent, head)
    assert answer.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert answer.endswith(b"Request body(100000000 bytes) too large, max size: 1048576 bytes")


def test_a_chunked_body_over_the_cap_is_refused_as_it_grows(agent: AgentProcess) -> None:
    piece = b"a" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(20))
    head = b"PUT /v1/agent/service/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = exchange(agent, head + chunks)
    assert answer.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert answer.endswith(b"Request body too large, max size: 1048576 bytes")
    assert agent.get("/v1/status/leader")


def test_kv_values_keep_consuls_message_whatever_the_body_cap(agent: AgentProcess) -> None:
    status, _, body = agent.request("PUT", "/v1/kv/big", b"x" * (512 * 1024 + 1))
    assert status == 413
    assert body.startswith(b"Request body(524289 bytes) too large, max size: 524288 bytes. See ")


def test_expect_100_continue_is_answered_before_the_body(agent: AgentProcess) -> None:
    with connect(agent) as sock:
        sock.sendall(
            b"PUT /v1/kv/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"true")


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"GET /v1/kv/%ff%fe HTTP/1.1", b"400"),
        (b"GET /v1/kv/a%00b HTTP/1.1", b"400"),
        (b"GET /v1/kv/a%0ab HTTP/1.1", b"400"),
        (b"GET /v1/kv/\xff HTTP/1.1", b"400"),
        (b"\x00\xff\xfe\x80 / HTTP/1.1", b"400"),
        (b"GET /v1/kv/a b HTTP/1.1", b"400"),
        (b"GET http://[ HTTP/1.1", b"400"),
        (b"GET /v1/kv/%E2%9C%93 HTTP/1.1", b"404"),
    ],
)
def test_odd_bytes_in_the_request_line_get_400_never_500(
    agent: AgentProcess, line: bytes, status: bytes
) -> None:
    answer = exchange(agent, line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 " + status + b" ")
    assert b"Traceback" not in answer
    assert agent.get("/v1/status/leader")


def test_half_sent_requests_are_closed_and_others_served_meanwhile(tmp_path: Path) -> None:
    hcl = 'http_config { read_header_timeout = "1s" } limits { http_max_conns_per_client = 0 }'
    with agent_with(tmp_path, hcl) as agent:
        socks = [connect(agent) for _ in range(200)]
        try:
            for sock in socks:
                sock.sendall(b"GET / HTTP/1.1\r\nHost:")
            assert agent.get("/v1/status/leader")
            sel = selectors.DefaultSelector()
            for sock in socks:
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ)
            closed = 0
            deadline = time.monotonic() + 30
            while closed < len(socks) and time.monotonic() < deadline:
                for key, _ in sel.select(1.0):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    with contextlib.suppress(ConnectionResetError):
                        assert sock.recv(4096) == b""  # closed without an answer, as Go does
                    sel.unregister(sock)
                    closed += 1
            sel.close()
            assert closed == len(socks)
            assert agent.get("/v1/status/leader")
        finally:
            for sock in socks:
                sock.close()


def test_idle_keep_alive_connections_are_closed_but_parked_queries_are_not(tmp_path: Path) -> None:
    with agent_with(tmp_path, 'http_config { idle_timeout = "1s" }') as agent:
        with connect(agent) as idle:
            idle.sendall(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_all(idle, limit=20)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Connection: close" not in answer

        agent.put("/v1/kv/parked", b"v")
        index = agent.request("GET", "/v1/kv/parked")[1]["X-Consul-Index"]
        conn = http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=20)
        try:
            conn.request("GET", f"/v1/kv/parked?index={index}&wait=3s")
            resp = conn.getresponse()
            assert resp.status == 200
            assert json.loads(resp.read())[0]["Key"] == "parked"
        finally:
            conn.close()


def test_connections_past_the_per_client_cap_get_429(tmp_path: Path) -> None:
    with agent_with(tmp_path, "limits { http_max_conns_per_client = 5 }") as agent:
        held = [connect(agent) for _ in range(5)]
        try:
            for sock in held:
                sock.sendall(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
            assert exchange(agent, b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n") == TOO_MANY
            held.pop().close()
            answer = b""
            for _ in range(50):  # the agent notices the close a moment later
                answer = exchange(agent, b"GET /v1/status/leader HTTP/1.1\r\nConnection: close\r\n\r\n")
                if answer != TOO_MANY:
                    break
                time.sleep(0.1)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        finally:
            for sock in held:
                sock.close()


def test_the_per_client_cap_follows_a_reload(tmp_path: Path) -> None:
    config = tmp_path / "limits.hcl"
    config.write_text("limits { http_max_conns_per_client = 0 }\n")
    args = ["-dev", "-node", "reload", "-config-file", str(config)]
    with AgentProcess(args, log_path=tmp_path / "agent.log") as agent:
        held = [connect(agent) for _ in range(3)]
        try:
            for sock in held:
                sock.sendall(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
            config.write_text("limits { http_max_conns_per_client = 3 }\n")
            assert agent.request("PUT", "/v1/agent/reload")[0] == 200
            assert exchange(agent, b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n") == TOO_MANY
        finally:
            for sock in held:
                sock.close()
