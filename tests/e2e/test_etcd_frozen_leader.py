"""A server agent on a three-member etcd whose leader keeps freezing: the answers of
compare-and-swap and lock writes through the HTTP API stay true, and after a write that
failed, reading tells whether it applied.

Whether a 1.5 s freeze of the leader interrupts a transaction in flight is chance (the
agent's calls time out after 10 s; only a lost proposal fails one sooner), so the test
ends with one freeze that surely does: of the member the agent writes through, longer
than that timeout, while it writes."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from etcd_cluster import EtcdCluster, etcd_available, etcd_cluster
from waypost.testing import AgentProcess, wait_for

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd is not installed"),
]

_WRITERS = 4

_STORE_TIMEOUT = 10.0
"""The agent's etcd call timeout (``EtcdStore``'s default): a freeze longer than this
fails the call it holds."""


def _read(agent: AgentProcess, key: str) -> dict[str, Any] | None:
    """The entry as the store holds it now; retried while the cluster elects a leader."""
    for _ in range(100):
        status, _, body = agent.request("GET", f"/v1/kv/{key}?consistent")
        if status == 404:
            return None
        if status == 200:
            entry: dict[str, Any] = json.loads(body)[0]
            return entry
        time.sleep(0.2)
    raise AssertionError(f"no consistent read of {key} within the bound")


def _value(entry: dict[str, Any] | None) -> bytes | None:
    return None if entry is None else base64.b64decode(entry["Value"] or "")


def _said(agent: AgentProcess, path: str, body: bytes = b"") -> bool | None:
    """The write's answer, or None when it failed (its outcome is then read, not told)."""
    status, _, answer = agent.request("PUT", path, body)
    if status == 200:
        told: bool = json.loads(answer)
        return told
    assert status == 500, answer
    return None


def _write_and_check(agent: AgentProcess, name: str, until: threading.Event, lies: list[str]) -> None:
    """Chain compare-and-swaps on one key and take and release one lock, comparing every
    answer with what a consistent read then finds; anything else going wrong is a lie too."""
    try:
        _check_writes(agent, name, until, lies)
    except Exception as exc:  # a thread's failure must reach the test
        lies.append(f"{name} failed: {exc!r}")


def _check_writes(agent: AgentProcess, name: str, until: threading.Event, lies: list[str]) -> None:
    session = agent.put("/v1/session/create", {"Name": name, "LockDelay": "0s"})["ID"]
    for i in range(500):
        if until.is_set():
            assert i > 0, "no write was made"
            return
        mine = f"{name}-{i}".encode()
        current = _read(agent, f"cas/{name}")
        index = 0 if current is None else current["ModifyIndex"]
        said = _said(agent, f"/v1/kv/cas/{name}?cas={index}", mine)
        if said is not None and said != (_value(_read(agent, f"cas/{name}")) == mine):
            lies.append(f"cas={index} of {mine!r} answered {said}")
        said = _said(agent, f"/v1/kv/lock/{name}?acquire={session}", mine)
        lock = _read(agent, f"lock/{name}")
        held = lock is not None and lock.get("Session") == session and _value(lock) == mine
        if said is not None and said != held:
            lies.append(f"acquire of {mine!r} answered {said}")
        said = _said(agent, f"/v1/kv/lock/{name}?release={session}")
        lock = _read(agent, f"lock/{name}")
        if said is not None and said != (lock is not None and not lock.get("Session")):
            lies.append(f"release of {mine!r} answered {said}")


def _cas_while_frozen(etcd: EtcdCluster, agent: AgentProcess, lies: list[str]) -> None:
    """A compare-and-swap sent to a member frozen for longer than the agent's timeout, so
    that the agent's transaction is interrupted whatever the timing; the member thaws
    on its own, since the answer waits for the agent's watch, which reads from it."""
    before = etcd.txn_calls()
    agent.put("/v1/kv/probe", "which member")
    member = etcd.written_through(before)
    assert member.process is not None
    member.process.send_signal(signal.SIGSTOP)
    thaw = threading.Timer(_STORE_TIMEOUT + 2, member.process.send_signal, (signal.SIGCONT,))
    thaw.start()
    try:
        said = _said(agent, "/v1/kv/cas/frozen?cas=0", b"once")
    finally:
        thaw.join(_STORE_TIMEOUT + 10)
        member.process.send_signal(signal.SIGCONT)
    if said is not None and said != (_value(_read(agent, "cas/frozen")) == b"once"):
        lies.append(f"cas=0 through a frozen member answered {said}")


def _alive(agent: AgentProcess, node: str) -> bool:
    checks = agent.get(f"/v1/health/node/{node}")
    return any(c["CheckID"] == "serfHealth" and c["Status"] == "passing" for c in checks)


def test_cas_and_lock_answers_stay_true_while_the_etcd_leader_freezes(tmp_path: Path) -> None:
    (tmp_path / "etcd").mkdir()
    with etcd_cluster(tmp_path / "etcd", members=3) as etcd:
        leader = etcd.leader()
        assert leader is not None
        # The agent talks to its first endpoint: the leader, the first member to freeze.
        url = "etcd://" + ",".join(sorted(etcd.endpoints, key=lambda e: e != leader.endpoint))
        log = tmp_path / "agent.log"
        args = [
            *("-server", "-store", url, "-bind", "127.0.0.1", "-node", "server-1"),
            *("-data-dir", str(tmp_path / "server"), "-log-level", "info"),
        ]
        agent = AgentProcess(args, log_path=log).start(30)
        stop = threading.Event()
        lies: list[str] = []
        freezer = threading.Thread(target=etcd.freeze_leaders, args=(stop, 8))
        writers = [
            threading.Thread(target=_write_and_check, args=(agent, f"w{n}", stop, lies))
            for n in range(_WRITERS)
        ]
        try:
            # Start-up waits for a leader, not for the node's serfHealth check, which every
            # session needs ("Missing check 'serfHealth' registration").
            wait_for(lambda: _alive(agent, "server-1"), 30)
            try:
                for thread in [freezer, *writers]:
                    thread.start()
                freezer.join(120)
            finally:
                stop.set()
                for thread in [freezer, *writers]:
                    thread.join(120)
            _cas_while_frozen(etcd, agent, lies)
        finally:
            agent.stop()
        assert lies == []
        assert "transaction interrupted" in log.read_text()
