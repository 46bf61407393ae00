"""A server's relay rule against a real agent: the relay marker passes the per-client cap
only from a cluster member's address. A dev agent is a member at 127.0.0.1; 127.0.0.2 is a
loopback address no member has."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from waypost.testing import AgentProcess

CAP = 3
MARKED = b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nX-Waypost-Forwarded: client\r\n\r\n"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = tmp_path_factory.mktemp("relays") / "agent.log"
    hcl = f"limits {{ http_max_conns_per_client = {CAP} }}"
    with AgentProcess(["-dev", "-node", "relays", "-hcl", hcl], log_path=log) as a:
        yield a


def _statuses(agent: AgentProcess, source: str, count: int) -> list[bytes]:
    """The status lines of ``count`` marked requests, each on its own connection from
    ``source``, all held open until the last is answered."""
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(
                ("127.0.0.1", agent.http_port), timeout=10, source_address=(source, 0)
            )
            held.append(sock)
            sock.sendall(MARKED)
        return [sock.recv(4096).split(b"\r\n", 1)[0] for sock in held]
    finally:
        for sock in held:
            sock.close()


def test_marked_requests_from_a_members_address_pass_the_cap(agent: AgentProcess) -> None:
    assert _statuses(agent, "127.0.0.1", CAP + 5) == [b"HTTP/1.1 200 OK"] * (CAP + 5)


def test_marked_requests_from_another_address_are_capped(agent: AgentProcess) -> None:
    statuses = _statuses(agent, "127.0.0.2", CAP + 1)
    assert statuses == [b"HTTP/1.1 200 OK"] * CAP + [b"HTTP/1.1 429 Too Many Requests"]
