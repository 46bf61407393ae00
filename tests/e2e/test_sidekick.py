"""``waypost run`` around real processes against real agents: registration, checks, signals,
exit codes, agent restarts and an agent that is not there yet."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from waypost.testing import AgentProcess, free_port, wait_for

LIMIT = 45.0

SERVER = """
import http.server, os, pathlib, signal, sys, time

port, state = int(sys.argv[1]), pathlib.Path(sys.argv[2])

def note(sig, frame):
    with open(state / "signals", "a") as f:
        f.write(signal.Signals(sig).name + "\\n")
    if sig == signal.SIGINT:
        sys.exit(3)

signal.signal(signal.SIGUSR1, note)
signal.signal(signal.SIGINT, note)
(state / "started").write_text(str(os.getpid()))
for _ in range(600):
    if (state / "go").exists():
        break
    time.sleep(0.05)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        for _ in range(200):
            if not (state / "hang").exists():
                break
            time.sleep(0.1)
        self.send_response(503 if (state / "sick").exists() else 200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
server.daemon_threads = True
server.serve_forever()
"""


class Sidekick:
    """One ``waypost run`` subprocess, its output in files so that no pipe fills up."""

    def __init__(self, tmp: Path, agent_address: str, *args: str) -> None:
        self.state = tmp / "state"
        self.state.mkdir(exist_ok=True)
        self.out, self.err = tmp / "stdout", tmp / "stderr"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSUL_", "WAYPOST_"))}
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "waypost", "run", f"-http-addr={agent_address}", *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
            )

    def signals(self) -> list[str]:
        path = self.state / "signals"
        return path.read_text().split() if path.exists() else []

    def log(self) -> str:
        return self.err.read_text()

    def wait(self) -> int:
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL the sidekick, and its child, which has a process group of its own (if the
        pid still runs this test's server: a pid may be reused once the child has exited)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        started = self.state / "started"
        if not started.exists():
            return
        pid = int(started.read_text())
        with contextlib.suppress(OSError):
            if str(self.state).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def sidekicks(tmp_path: Path) -> Iterator[list[Sidekick]]:
    started: list[Sidekick] = []
    yield started
    for sidekick in started:
        sidekick.kill()


def _run_server(
    sidekicks: list[Sidekick], tmp: Path, agent: str, port: int, *flags: str, go: bool = True
) -> Sidekick:
    """``waypost run ... -- python3 server.py PORT STATE``."""
    (tmp / "state").mkdir(exist_ok=True)
    if go:
        (tmp / "state" / "go").touch()
    script = tmp / "state" / "server.py"
    script.write_text(SERVER)
    command = [sys.executable, str(script), str(port), str(tmp / "state")]
    sidekick = Sidekick(tmp, agent, "-service", "web", "-port", str(port), *flags, "--", *command)
    sidekicks.append(sidekick)
    return sidekick


def _until(predicate: Any) -> None:
    """Generous: each wait includes starting Python processes on a machine that may be busy."""
    wait_for(predicate, limit=LIMIT)


def _check(agent: AgentProcess, service_id: str) -> dict[str, Any] | None:
    checks: dict[str, dict[str, Any]] = agent.get("/v1/agent/checks")
    return checks.get(f"service:{service_id}")


def _instances(agent: AgentProcess, service: str, *, passing: bool) -> list[str]:
    entries = agent.get(f"/v1/health/service/{service}" + ("?passing" if passing else ""))
    return [str(e["Service"]["ID"]) for e in entries]


def _output(agent: AgentProcess, service_id: str) -> str:
    """The agent's own view, which a heartbeat's output reaches at once (the catalog's lags)."""
    check = _check(agent, service_id)
    return "" if check is None else str(check["Output"])


def _status(agent: AgentProcess, service_id: str) -> str | None:
    check = _check(agent, service_id)
    return None if check is None else str(check["Status"])


def test_http_server_registered_when_listening_critical_when_silent_gone_on_exit(
    dev_agent: AgentProcess, tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    port = free_port()
    sid = f"web-{port}"
    flags = ("-check-http", "/health", "-check-ttl", "5s", "-check-interval", "300ms", "-tag", "v1")
    sidekick = _run_server(sidekicks, tmp_path, dev_agent.address, port, *flags, "-meta", "team=a", go=False)
    _until(lambda: (sidekick.state / "started").exists())
    time.sleep(0.5)  # the child runs but does not listen yet: nothing may be registered
    assert sid not in dev_agent.get("/v1/agent/services")
    (sidekick.state / "go").touch()
    _until(lambda: _status(dev_agent, sid) == "passing")
    service = dev_agent.get(f"/v1/agent/service/{sid}")
    assert (service["Service"], service["Port"], service["Tags"], service["Meta"]) == (
        "web",
        port,
        ["v1"],
        {"team": "a"},
    )
    assert _instances(dev_agent, "web", passing=True) == [sid]

    (sidekick.state / "hang").touch()  # stops answering: critical within probe timeout + interval
    _until(lambda: _status(dev_agent, sid) == "critical")
    _until(lambda: "context deadline exceeded" in _output(dev_agent, sid))
    _until(lambda: sid not in _instances(dev_agent, "web", passing=True))  # what clients see
    (sidekick.state / "hang").unlink()
    _until(lambda: _status(dev_agent, sid) == "passing")
    (sidekick.state / "sick").touch()
    _until(lambda: _status(dev_agent, sid) == "critical")
    _until(lambda: "503" in _output(dev_agent, sid))
    (sidekick.state / "sick").unlink()
    _until(lambda: _status(dev_agent, sid) == "passing")

    sidekick.proc.send_signal(signal.SIGUSR1)
    _until(lambda: sidekick.signals() == ["SIGUSR1"])
    sidekick.proc.send_signal(signal.SIGINT)
    assert sidekick.wait() == 3  # the child's own status
    assert sidekick.signals() == ["SIGUSR1", "SIGINT"]  # each delivered once
    assert sid not in dev_agent.get("/v1/agent/services")
    assert sid not in _instances(dev_agent, "web", passing=False)
    assert f"deregistered service '{sid}'" in sidekick.log()


def test_sigterm_passes_through_and_a_killed_child_reports_128_plus_the_signal(
    dev_agent: AgentProcess, tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    port = free_port()
    sidekick = _run_server(sidekicks, tmp_path, dev_agent.address, port, "-check-tcp", "-id", "tcp-web")
    _until(lambda: _status(dev_agent, "tcp-web") == "passing")
    _until(lambda: "TCP connect" in _output(dev_agent, "tcp-web"))
    sidekick.proc.send_signal(signal.SIGTERM)
    assert sidekick.wait() == 128 + signal.SIGTERM
    assert "tcp-web" not in dev_agent.get("/v1/agent/services")


def test_process_check_follows_the_process_and_lapses_if_the_sidekick_dies(
    dev_agent: AgentProcess, tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    port = free_port()
    sidekick = _run_server(
        sidekicks,
        tmp_path,
        dev_agent.address,
        port,
        "-check-ttl",
        "1s",
        "-id",
        "ttl-web",
        "-check-deregister-after",
        "1m",
    )
    _until(lambda: _status(dev_agent, "ttl-web") == "passing")
    _until(lambda: "is running" in _output(dev_agent, "ttl-web"))
    sidekick.kill()  # no more heartbeats: the TTL lapses
    _until(lambda: _status(dev_agent, "ttl-web") == "critical")
    dev_agent.put("/v1/agent/service/deregister/ttl-web")


def test_reregisters_after_the_agent_restarts_without_its_state(
    tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    log = tmp_path / "agent.log"
    agent = AgentProcess(["-dev"], log_path=log).start()
    try:
        port = free_port()
        sidekick = _run_server(
            sidekicks, tmp_path, agent.address, port, "-check-ttl", "3s", "-check-interval", "200ms"
        )
        sid = f"web-{port}"
        _until(lambda: _status(agent, sid) == "passing")
        agent.kill()
        _until(
            lambda: "heartbeat of service" in sidekick.log() and "retrying with back-off" in sidekick.log()
        )
        agent = AgentProcess(["-dev"], http_port=agent.http_port, log_path=log).start()
        _until(lambda: _status(agent, sid) == "passing")
        assert "agent no longer knows check" in sidekick.log(), sidekick.log()
    finally:
        agent.stop()


def test_an_unreachable_agent_is_retried_with_back_off_and_a_clear_log_line(
    tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    agent = AgentProcess(["-dev"], log_path=tmp_path / "agent.log")
    port = free_port()
    sidekick = _run_server(sidekicks, tmp_path, agent.address, port)
    sid = f"web-{port}"
    expected = f"registration of service '{sid}' failed: agent at http://{agent.address} unreachable"
    _until(lambda: expected in sidekick.log())
    assert "retrying with back-off" in sidekick.log()
    assert sidekick.log().count(expected) == 1  # one line per failure streak
    with agent:
        _until(lambda: _status(agent, sid) == "passing")
        # The agent can show the check before the sidekick has written the line.
        _until(lambda: "answers again" in sidekick.log())


def test_env_from_healthy_instances_and_the_child_exit_status(
    dev_agent: AgentProcess, tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    dev_agent.put(
        "/v1/agent/service/register", {"Name": "db-main", "ID": "db1", "Address": "10.1.2.3", "Port": 5432}
    )
    dev_agent.put(
        "/v1/agent/service/register",
        {"Name": "sick", "Port": 1, "Check": {"TTL": "30s", "Status": "critical"}},
    )
    show = (
        "import os, sys\n"
        "for k, v in sorted(os.environ.items()):\n"
        "    if k.startswith(('DB_MAIN_', 'SICK_', 'ABSENT_')): print(k + '=' + v)\n"
        "sys.exit(5)"
    )
    sidekick = Sidekick(
        tmp_path,
        dev_agent.address,
        *("-service", "job", "-port", str(free_port()), "-env-from", "db-main,sick", "-env-from", "absent"),
        *("--", sys.executable, "-c", show),
    )
    sidekicks.append(sidekick)
    assert sidekick.wait() == 5
    assert sidekick.out.read_text().splitlines() == [
        "DB_MAIN_PORT=tcp://10.1.2.3:5432",
        "DB_MAIN_PORT_5432_TCP=tcp://10.1.2.3:5432",
        "DB_MAIN_PORT_5432_TCP_ADDR=10.1.2.3",
        "DB_MAIN_PORT_5432_TCP_PORT=5432",
        "DB_MAIN_PORT_5432_TCP_PROTO=tcp",
        "DB_MAIN_SERVICE_HOST=10.1.2.3",
        "DB_MAIN_SERVICE_PORT=5432",
    ]
    assert "no healthy instance of service 'sick'" in sidekick.log()
    assert "no healthy instance of service 'absent'" in sidekick.log()
    assert "job" not in {s["Service"] for s in dev_agent.get("/v1/agent/services").values()}


def test_env_from_with_no_agent_fails_before_starting_the_child(
    tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    address = f"127.0.0.1:{free_port()}"
    marker = tmp_path / "ran"
    sidekick = Sidekick(
        tmp_path,
        address,
        *("-service", "job", "-port", "9", "-env-from", "db", "-agent-wait", "1s"),
        *("--", "touch", str(marker)),
    )
    sidekicks.append(sidekick)
    assert sidekick.wait() == 1
    assert f"Error querying Consul agent: agent at http://{address} unreachable" in sidekick.log()
    assert "retrying in" in sidekick.log()
    assert not marker.exists()


def test_a_command_that_never_listens_is_stopped(
    dev_agent: AgentProcess, tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    port = free_port()
    sidekick = _run_server(sidekicks, tmp_path, dev_agent.address, port, "-listen-timeout", "1s", go=False)
    assert sidekick.wait() == 1
    assert f"did not listen on 127.0.0.1:{port} within 1s; stopping it" in sidekick.log()
    assert f"web-{port}" not in dev_agent.get("/v1/agent/services")


def test_a_missing_command_exits_127(
    dev_agent: AgentProcess, tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    sidekick = Sidekick(
        tmp_path, dev_agent.address, "-service", "x", "-port", "9", "--", str(tmp_path / "nope")
    )
    sidekicks.append(sidekick)
    assert sidekick.wait() == 127
    assert "could not start" in sidekick.log()


def test_no_wait_registers_at_once_and_the_probe_decides(
    dev_agent: AgentProcess, tmp_path: Path, sidekicks: list[Sidekick]
) -> None:
    port = free_port()
    flags = ("-no-wait", "-check-tcp", "-check-interval", "200ms", "-id", "eager")
    sidekick = _run_server(sidekicks, tmp_path, dev_agent.address, port, *flags, go=False)
    _until(lambda: _status(dev_agent, "eager") == "critical")
    (sidekick.state / "go").touch()
    _until(lambda: _status(dev_agent, "eager") == "passing")
    sidekick.proc.send_signal(signal.SIGTERM)
    assert sidekick.wait() == 128 + signal.SIGTERM
    assert "eager" not in dev_agent.get("/v1/agent/services")
