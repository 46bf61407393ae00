"""Checks run by a real agent against real local targets reach the catalog, blocking queries and DNS."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from waypost.testing import AgentProcess, free_port


class _Target(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"hello from target")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def target() -> Iterator[tuple[str, type[_Target]]]:
    handler = type("Target", (_Target,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health", handler
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("checks")) / "agent.log"
    with AgentProcess(["-dev", "-enable-script-checks"], log_path=log) as proc:
        yield proc


def _status(agent: AgentProcess, check_id: str) -> tuple[str, str]:
    check = agent.get("/v1/agent/checks")[check_id]
    return check["Status"], check["Output"]


def _wait(predicate, limit: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_http_check_follows_its_target_into_catalog_and_dns(
    agent: AgentProcess, target: tuple[str, type[_Target]]
) -> None:
    url, handler = target
    agent.put(
        "/v1/agent/service/register",
        {"Name": "api", "ID": "api-1", "Address": "127.0.0.31", "Port": 80,
         "Check": {"HTTP": url, "Interval": "1s", "Timeout": "1s"}},
    )  # fmt: skip
    _wait(lambda: _status(agent, "service:api-1")[0] == "passing")
    assert _status(agent, "service:api-1")[1] == f"HTTP GET {url}: 200 OK Output: hello from target"

    def dns_a() -> list[str]:
        reply = dns.query.udp(
            dns.message.make_query("api.service.consul", "A"), "127.0.0.1", port=agent.dns_port
        )
        return [rd.to_text() for rrset in reply.answer for rd in rrset]

    assert dns_a() == ["127.0.0.31"]
    handler.status = 503
    _wait(lambda: _status(agent, "service:api-1")[0] == "critical")
    _wait(lambda: dns_a() == [])  # the catalog follows the agent's own status by anti-entropy
    assert agent.get("/v1/health/service/api?passing") == []
    handler.status = 429
    _wait(lambda: _status(agent, "service:api-1")[0] == "warning")
    _wait(lambda: dns_a() == ["127.0.0.31"])


def test_tcp_and_script_checks(agent: AgentProcess, tmp_path: Path) -> None:
    closed = free_port()
    agent.put("/v1/agent/check/register", {"Name": "db-port", "TCP": f"127.0.0.1:{closed}", "Interval": "1s"})
    _wait(lambda: _status(agent, "db-port")[0] == "critical")
    flag = tmp_path / "ok"
    script = ["/bin/sh", "-c", f"test -e {flag} && echo fine || exit 2"]
    agent.put("/v1/agent/check/register", {"Name": "script", "Args": script, "Interval": "1s"})
    _wait(lambda: _status(agent, "script")[0] == "critical")
    flag.touch()
    _wait(lambda: _status(agent, "script") == ("passing", "fine\n"))
