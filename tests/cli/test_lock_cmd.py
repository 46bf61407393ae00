from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from cli_support import Runner

from waypost.testing import AgentProcess


def _lock_proc(agent: AgentProcess, *args: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "waypost", "lock", f"-http-addr={agent.address}", *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _run_all(procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> list[int]:
    codes = []
    for proc in procs:
        with proc:
            codes.append(proc.wait(timeout=timeout))
    return codes


def _child(log: Path, name: str, pause: float) -> str:
    return f"echo start {name} >> {log}; sleep {pause}; echo end {name} >> {log}"


def test_two_locks_never_overlap(dev_agent: AgentProcess, tmp_path: Path) -> None:
    log = tmp_path / "log"
    procs = [_lock_proc(dev_agent, "mutex/job", _child(log, name, 0.5)) for name in ("a", "b", "c")]
    assert _run_all(procs) == [0, 0, 0]
    lines = log.read_text().splitlines()
    assert len(lines) == 6
    for i in range(0, 6, 2):  # every start is followed by its own end before anyone else starts
        assert lines[i].replace("start", "end") == lines[i + 1]
    status, _, _ = dev_agent.request("GET", "/v1/kv/mutex/job/.lock")
    assert status == 404  # released and cleaned up


def test_semaphore_admits_n_holders(dev_agent: AgentProcess, tmp_path: Path) -> None:
    log = tmp_path / "log"
    procs = [_lock_proc(dev_agent, "-n=2", "sem/job", _child(log, str(i), 1.0)) for i in range(4)]
    assert _run_all(procs) == [0, 0, 0, 0]
    running, peak = 0, 0
    for line in log.read_text().splitlines():
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    assert peak == 2
    status, _, _ = dev_agent.request("GET", "/v1/kv/sem/job/.lock")
    assert status == 404


def test_child_environment_and_exit_codes(waypost: Runner) -> None:
    r = waypost("lock", "env/lock", "echo held=$CONSUL_LOCK_HELD")
    assert (r.code, r.out) == (0, "held=true\n")
    assert waypost("lock", "env/lock", "exit 3").code == 0  # Consul ignores the child's status by default
    r = waypost("lock", "-child-exit-code", "env/lock", "exit 3")
    assert r.code == 2
    assert waypost("lock", "-shell=false", "env/lock", "true").code == 0


def test_timeout_while_held_elsewhere(dev_agent: AgentProcess, tmp_path: Path, waypost: Runner) -> None:
    marker = tmp_path / "holding"
    holder = _lock_proc(dev_agent, "busy/lock", f"touch {marker}; sleep 3")
    with holder:
        deadline = time.monotonic() + 15
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        r = waypost("lock", "-timeout=500ms", "busy/lock", "echo never")
        assert time.monotonic() - started < 5
        assert (r.code, r.out) == (1, "")
        assert r.err == "Shutdown triggered or timeout during lock acquisition\n"
        assert holder.wait(timeout=20) == 0


def test_lost_lock_kills_the_child(dev_agent: AgentProcess, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    proc = _lock_proc(dev_agent, "-verbose", "lost/lock", f"touch {marker}; sleep 30")
    with proc:
        deadline = time.monotonic() + 15
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        session = dev_agent.get("/v1/kv/lost/lock/.lock")[0]["Session"]
        dev_agent.put(f"/v1/session/destroy/{session}")
        started = time.monotonic()
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - started < 10
        assert proc.stdout is not None
        assert b"Lock lost, killing child" in proc.stdout.read()


def test_lock_usage_errors(waypost: Runner) -> None:
    assert waypost("lock", "only-prefix").err == "Key prefix and child command must be specified\n"
    assert waypost("lock", "-n=0", "p", "true").err == "Lock holder limit must be positive\n"
    assert waypost("lock", "-timeout=-1s", "p", "true").err == "Timeout must be positive\n"
    assert waypost("lock", "-timeout=soon", "p", "true").code == 1
    assert waypost("lock", "--help").out.startswith("Usage: waypost lock")
