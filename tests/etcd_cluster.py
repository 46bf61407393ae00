"""Real etcd members on 127.0.0.1 for tests: free ports, temp data dirs, bounded waits;
and server agents over them with a client agent joined, for the client-agent scenarios.

Not a test module: store tests use it for a single member, and scale-out tests can ask
for a three-member cluster with ``etcd_cluster(tmp_path, members=3)``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from waypost.testing import AgentProcess, free_port, wait_for

__all__ = [
    "EtcdCluster",
    "EtcdMember",
    "EtcdTLS",
    "etcd_available",
    "etcd_cluster",
    "free_port",
    "servers_and_client",
]

# Short raft timings keep elections fast and let etcd grant 1-second leases.
_RAFT_FLAGS = ["--heartbeat-interval=20", "--election-timeout=200"]
_HEALTHY_WITHIN = 30.0


def etcd_available() -> bool:
    return shutil.which("etcd") is not None


@dataclass(frozen=True)
class EtcdTLS:
    """Client traffic over TLS with ``--client-cert-auth``: the members serve ``cert``/``key``,
    trust ``ca``, and demand a client certificate it signed (tests use one pair for both)."""

    ca: Path
    cert: Path
    key: Path

    def flags(self) -> list[str]:
        return [
            f"--cert-file={self.cert}",
            f"--key-file={self.key}",
            f"--trusted-ca-file={self.ca}",
            "--client-cert-auth",
        ]

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    tls: EtcdTLS | None = None
    flags: tuple[str, ...] = ()

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.endpoint}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def start(self, initial_cluster: str, state: str = "new") -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                "etcd",
                f"--name={self.name}",
                f"--data-dir={self.data_dir}",
                f"--listen-client-urls={self.client_url}",
                f"--advertise-client-urls={self.client_url}",
                f"--listen-peer-urls=http://127.0.0.1:{self.peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{self.peer_port}",
                f"--initial-cluster={initial_cluster}",
                f"--initial-cluster-state={state}",
                "--initial-cluster-token=waypost-test",
                *_RAFT_FLAGS,
                *(self.tls.flags() if self.tls else ()),
                *self.flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def healthy(self) -> bool:
        url = f"{self.client_url}/health"
        try:
            context = self.tls.context() if self.tls else None
            with urllib.request.urlopen(url, timeout=1.0, context=context) as response:
                return b'"health":"true"' in response.read()
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a bounded wait."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@dataclass
class EtcdCluster:
    members: list[EtcdMember] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    @property
    def url(self) -> str:
        """The ``open_store`` URL for every member."""
        return "etcd://" + ",".join(self.endpoints)

    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self.members)

    def wait_healthy(self, timeout: float = _HEALTHY_WITHIN) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [m for m in self.members if m.process is not None]
            for member in running:
                if member.process is not None and member.process.poll() is not None:
                    raise RuntimeError(f"etcd {member.name} exited; see {member.log_path}")
            if all(m.healthy() for m in running):
                return
            time.sleep(0.1)
        raise TimeoutError(f"etcd cluster not healthy within {timeout}s")

    def leader(self) -> EtcdMember | None:
        """The member that says it leads, through etcd's JSON gateway; None mid-election."""
        for member in self.members:
            if member.process is None:
                continue
            url = f"http://{member.endpoint}/v3/maintenance/status"
            try:
                with urllib.request.urlopen(urllib.request.Request(url, b"{}"), timeout=1.0) as response:
                    status = json.load(response)
            except (OSError, ValueError):
                continue
            if status.get("leader") == status["header"]["member_id"]:
                return member
        return None

    def txn_calls(self) -> dict[str, float]:
        """How many Txn calls each running member has been sent, by endpoint (etcd's gRPC
        metrics; a follower passing a write on to the leader does not count there)."""
        counts: dict[str, float] = {}
        for member in self.members:
            if member.process is None:
                continue
            with urllib.request.urlopen(f"http://{member.endpoint}/metrics", timeout=5) as response:
                lines = response.read().decode().splitlines()
            counts[member.endpoint] = sum(
                float(line.rsplit(" ", 1)[1])
                for line in lines
                if line.startswith("grpc_server_started_total{") and 'grpc_method="Txn"' in line
            )
        return counts

    def written_through(self, before: dict[str, float]) -> EtcdMember:
        """The one member sent Txn calls since ``before`` (``txn_calls()``): the member a
        single client, which writes through one member until a call there fails, uses."""
        after = self.txn_calls()
        [member] = [m for m in self.members if after.get(m.endpoint, 0) > before.get(m.endpoint, 0)]
        return member

    def freeze_leaders(self, stop: threading.Event, pauses: int, frozen: float = 1.5) -> None:
        """Freeze the leader (SIGSTOP) for ``frozen`` seconds, ``pauses`` times or until
        ``stop``, so that calls in flight on it time out whether or not they committed.
        Meant for a thread beside the test's own calls."""
        for _ in range(pauses):
            if stop.wait(0.7):
                return
            leader = self.leader()
            if leader is None or leader.process is None:
                continue
            leader.process.send_signal(signal.SIGSTOP)
            try:
                stop.wait(frozen)
            finally:
                leader.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for member in self.members:
            member.stop()


@contextlib.contextmanager
def etcd_cluster(
    base_dir: Path, members: int = 1, tls: EtcdTLS | None = None, flags: tuple[str, ...] = ()
) -> Iterator[EtcdCluster]:
    """Start ``members`` etcd processes forming one cluster, serving clients over TLS with
    ``tls`` and started with the extra ``flags`` (``--max-txn-ops=…``); stop them all on exit."""
    cluster = EtcdCluster(
        [
            EtcdMember(
                name=f"m{i}",
                client_port=free_port(),
                peer_port=free_port(),
                data_dir=base_dir / f"m{i}",
                log_path=base_dir / f"m{i}.log",
                tls=tls,
                flags=flags,
            )
            for i in range(members)
        ]
    )
    try:
        initial = cluster.initial_cluster()
        for member in cluster.members:
            member.start(initial)
        cluster.wait_healthy()
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def servers_and_client(
    base: Path, servers: Sequence[str], client: str
) -> Iterator[tuple[EtcdCluster, list[AgentProcess], AgentProcess]]:
    """Server agents named ``servers`` on one etcd member and a client agent ``client``
    joined to the first of them only (it learns the others from the members), once the
    client knows a leader; every agent is stopped on exit."""
    (base / "etcd").mkdir()
    with etcd_cluster(base / "etcd") as etcd:
        started: list[AgentProcess] = []
        try:
            for name in servers:
                args = [
                    *("-server", "-store", etcd.url, "-bind", "127.0.0.1", "-node", name),
                    *("-data-dir", str(base / name)),
                ]
                started.append(AgentProcess(args, log_path=base / f"{name}.log").start(30))
            args = [
                *("-bind", "127.0.0.1", "-node", client, "-data-dir", str(base / client)),
                *("-retry-interval", "1s", "-retry-join", started[0].server_address),
            ]
            joined = AgentProcess(args, log_path=base / f"{client}.log", wait_for_leader=False).start(30)
            started.append(joined)
            wait_for(lambda: joined.get("/v1/status/leader"), 30)
            yield etcd, started[:-1], joined
        finally:
            for agent in started:
                agent.stop()
