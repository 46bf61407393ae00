from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cli_support import Runner

from waypost.testing import AgentProcess


def _wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@contextmanager
def _watching(agent: AgentProcess, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    argv = [sys.executable, "-m", "waypost", "watch", f"-http-addr={agent.address}", *args]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


def test_key_handler_runs_once_per_change(dev_agent: AgentProcess, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    index_log = tmp_path / "index.log"
    handler = f"cat >> {out}; echo $CONSUL_INDEX >> {index_log}"
    with _watching(dev_agent, "-type=key", "-key=watched/k", handler) as proc:
        _wait_for(lambda: len(_lines(out)) == 1)
        dev_agent.put("/v1/kv/watched/k", b"one")
        _wait_for(lambda: len(_lines(out)) == 2)
        dev_agent.put("/v1/kv/watched/k", b"two")
        _wait_for(lambda: len(_lines(out)) == 3)
        dev_agent.put("/v1/kv/unrelated", b"x")  # another key's write must not re-run the handler
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    calls = [json.loads(line) for line in _lines(out)]
    assert calls[0] is None  # the key did not exist yet: Consul hands the handler null
    assert [base64.b64decode(c["Value"]) for c in calls[1:]] == [b"one", b"two"]
    indexes = [int(i) for i in _lines(index_log)]
    assert len(indexes) == 3
    assert indexes[1] < indexes[2]


def test_keyprefix_handler_as_argv_without_shell(dev_agent: AgentProcess, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    with _watching(dev_agent, "-type=keyprefix", "-prefix=wp/", "-shell=false", "sh", "-c", f"cat >> {out}"):
        _wait_for(lambda: len(_lines(out)) == 1)
        dev_agent.put("/v1/kv/wp/a", b"1")
        _wait_for(lambda: len(_lines(out)) == 2)
    last = json.loads(_lines(out)[-1])
    assert [p["Key"] for p in last] == ["wp/a"]


def test_event_handler_sees_only_new_events(dev_agent: AgentProcess, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    dev_agent.put("/v1/event/fire/before", b"old")
    with _watching(dev_agent, "-type=event", "-name=wevt", f"cat >> {out}"):
        _wait_for(lambda: len(_lines(out)) == 1)
        dev_agent.put("/v1/event/fire/wevt", b"first")
        _wait_for(lambda: len(_lines(out)) == 2)
        dev_agent.put("/v1/event/fire/wevt", b"second")
        _wait_for(lambda: len(_lines(out)) == 3)
    calls = [json.loads(line) for line in _lines(out)]
    assert calls[0] == []
    assert [[base64.b64decode(e["Payload"]) for e in c] for c in calls[1:]] == [[b"first"], [b"second"]]


def test_service_watch_without_handler_prints_once(waypost: Runner, dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "watchedsvc", "Port": 1, "Tags": ["t1"]})
    r = waypost("watch", "-type=service", "-service=watchedsvc", "-tag=t1", "-passingonly=false", timeout=20)
    assert r.code == 0
    entries = json.loads(r.out)
    assert [e["Service"]["Service"] for e in entries] == ["watchedsvc"]
    assert r.out.startswith("[\n    {")  # Consul's four-space indent
    r = waypost("watch", "-type=services", timeout=20)
    assert "watchedsvc" in json.loads(r.out)
    assert isinstance(json.loads(waypost("watch", "-type=nodes").out), list)
    assert isinstance(json.loads(waypost("watch", "-type=checks", "-state=any").out), list)


def test_failing_handler_stops_the_watch_with_exit_1(waypost: Runner) -> None:
    r = waypost("watch", "-type=key", "-key=any", "exit 3", timeout=20)
    assert r.code == 1
    assert "exit status 3" in r.err


def test_watch_usage_errors(waypost: Runner) -> None:
    assert waypost("watch").err.startswith("Watch type must be specified")
    assert waypost("watch", "-type=bogus").err == "Unsupported watch type: bogus\n"
    assert waypost("watch", "-type=key").err == "Must specify a single key to watch\n"
    assert waypost("watch", "-type=services", "-key=x").err == "Invalid parameters: [key]\n"
    r = waypost("watch", "-type=checks", "-service=a", "-state=any")
    assert r.err == "Cannot specify service and state\n"
    r = waypost("watch", "-type=service", "-service=x", "-passingonly=maybe")
    assert r.code == 1
    assert r.err.startswith("Failed to parse passingonly flag")
    r = waypost("watch", "-type=service", "-service=x", "-passingonly=tRuE")
    assert r.err == 'Failed to parse passingonly flag: strconv.ParseBool: parsing "tRuE": invalid syntax\n'
    assert waypost("watch", "-h").out.startswith("Usage: waypost watch")
