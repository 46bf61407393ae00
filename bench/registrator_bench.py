"""Registrator: a burst of container starts to the catalog, a full sync, and idle CPU.

Runs podman's API service over a private store (waypost.testing.podman), a dev agent
and ``waypost registrator`` as separate processes, all on 127.0.0.1, and reports:

* one container: started and stopped a few times, time from the podman command
  returning to the change showing in the catalog and in DNS;
* burst: N created containers started at once (several ``podman start`` processes in
  parallel), time from the burst's first start to all N services in the agent's list,
  and from the last ``podman start`` returning to the same point;
* restart: the registrator killed and started again with N running containers, time
  to a catalog with exactly N of its services (none lost, none duplicated);
* idle: the registrator's CPU share of one core over a quiet window afterwards.

    python bench/registrator_bench.py                 # 500 containers, 20 s idle window
    python bench/registrator_bench.py --containers 100 --idle 10
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.message
import dns.query
from _common import AgentProcess, append_results, cpu_seconds, fmt, markdown_table, median

from waypost.testing.podman import IMAGE, ULIMITS, Podman, start_podman

WEB = "localhost/web:latest"
SLEEP = ("/bin/sleep", "3600")
HOST = "bench"
STARTERS = 8
"""Parallel ``podman start`` processes in the burst."""
SAMPLES = 5
"""Start/stop cycles of the single container."""


def registrator(agent: AgentProcess, engine: Podman, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{engine.socket}"}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "waypost", "registrator", "-hostname", HOST, "-ip", "127.0.0.1",
             f"consul://{agent.address}"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip


def ours(agent: AgentProcess) -> int:
    services = agent.get("/v1/agent/services")
    return sum(1 for s in services.values() if (s.get("Meta") or {}).get("registrator-host") == HOST)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now, from a range the kernel does not hand out."""
    found: list[int] = []
    for port in range(20000, 32000):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError(f"fewer than {count} free ports in 20000-31999")


def solo_in_dns(agent: AgentProcess) -> bool:
    query = dns.message.make_query("solo.service.consul", "SRV")
    return bool(dns.query.udp(query, "127.0.0.1", port=agent.dns_port, timeout=2).answer)


def single_container(engine: Podman, agent: AgentProcess, port: int, limit: float) -> tuple[float, float]:
    """Median seconds from ``podman start`` / ``podman stop`` returning to the service being
    in / gone from both the catalog and DNS, over SAMPLES cycles of one container."""
    publish = f"127.0.0.1:{port}:80"
    engine.run("run", "-d", "--name", "solo", "-p", publish, "-e", "SERVICE_NAME=solo", *ULIMITS, WEB, *SLEEP)

    def listed() -> bool:
        return bool(agent.get("/v1/catalog/service/solo")) and solo_in_dns(agent)

    until(listed, limit)
    shown, hidden = [], []
    for _ in range(SAMPLES):
        engine.run("stop", "-t", "0", "solo")
        stopped = time.monotonic()
        hidden.append(until(lambda: not listed(), limit) - stopped)
        engine.run("start", "solo")
        started = time.monotonic()
        shown.append(until(listed, limit) - started)
    engine.run("rm", "-f", "-t", "0", "solo")
    return median(shown), median(hidden)


def until(predicate: Callable[[], bool], limit: float) -> float:
    """Wall-clock time at which ``predicate`` first held; raises after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"not reached within {limit}s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--containers", type=int, default=500)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of the idle CPU window")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds to wait for any phase")
    args = parser.parse_args()
    n = args.containers
    with tempfile.TemporaryDirectory(prefix="registrator-bench-") as tmp:
        folder = Path(tmp)
        engine = start_podman(folder)
        engine.run("tag", IMAGE, WEB)
        names = [f"web{i}" for i in range(n)]
        # Host ports chosen here: podman's own picks collide when hundreds start at once.
        *host_ports, solo_port = free_ports(n + 1)
        published = dict(zip(names, host_ports, strict=True))

        def create(name: str) -> str:
            port = f"127.0.0.1:{published[name]}:80"
            return engine.run("create", "--name", name, "-p", port, *ULIMITS, WEB, *SLEEP)

        with ThreadPoolExecutor(STARTERS) as pool:
            list(pool.map(create, names))
        engine.start_service()
        proc: subprocess.Popen[bytes] | None = None
        log = folder / "registrator.log"
        try:
            agent = AgentProcess(["-dev"], log_path=folder / "agent.log").start()
            ports = {
                "http_port": agent.http_port,
                "dns_port": agent.dns_port,
                "server_port": agent.server_port,
            }
            try:
                proc = registrator(agent, engine, log)
                until(lambda: "Syncing services" in log.read_text(), 30)
                shown, hidden = single_container(engine, agent, solo_port, args.limit)
                chunks = [names[i::STARTERS] for i in range(STARTERS)]
                began = time.monotonic()
                with ThreadPoolExecutor(STARTERS) as pool:
                    list(pool.map(lambda chunk: engine.run("start", *chunk, timeout=args.limit), chunks))
                started = time.monotonic()
                tail = max(0.0, until(lambda: ours(agent) == n, args.limit) - started)
                engine_start = started - began

                agent.stop()
                agent = AgentProcess(["-dev"], **ports, log_path=folder / "agent.log").start()
                restarted = time.monotonic()
                back = until(lambda: ours(agent) == n, args.limit) - restarted

                proc.send_signal(signal.SIGKILL)
                proc.wait()
                agent.stop()
                agent = AgentProcess(["-dev"], **ports, log_path=folder / "agent.log").start()
                launched = time.monotonic()
                proc = registrator(agent, engine, log)
                cold = until(lambda: ours(agent) == n, args.limit) - launched

                proc.send_signal(signal.SIGKILL)
                proc.wait()
                syncs = log.read_text().count("Syncing services")
                proc = registrator(agent, engine, log)
                until(lambda: log.read_text().count("Syncing services") > syncs, 30)
                time.sleep(3.0)
                duplicates = len(agent.get("/v1/catalog/service/web")) - n

                cpu_before, wall_before = cpu_seconds(proc.pid), time.monotonic()
                time.sleep(args.idle)
                idle = (cpu_seconds(proc.pid) - cpu_before) / (time.monotonic() - wall_before) * 100
            finally:
                agent.stop()
        finally:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
            engine.stop_service()
            engine.run("rm", "-af", "-t", "0", timeout=600)
    rows = [
        ["one container started / stopped", "command returned to catalog and DNS (median of 5)",
         f"{fmt(shown * 1000, 0)} / {fmt(hidden * 1000, 0)} ms", "<= 1 s",
         "yes" if max(shown, hidden) <= 1 else "**no**"],
        [f"{n} containers started at once", "last start returned to all registered", f"{fmt(tail, 2)} s",
         "<= 5 s", "yes" if tail <= 5 else "**no**"],
        [f"{n} containers started at once", "the engine's time to start them", f"{fmt(engine_start, 1)} s",
         "", ""],
        [f"registrator started, {n} running", "launch to all registered", f"{fmt(cold, 2)} s", "<= 5 s",
         "yes" if cold <= 5 else "**no**"],
        [f"agent restarted empty, {n} running", "agent serving to all registered again", f"{fmt(back, 2)} s",
         "", ""],
        [f"registrator restarted, {n} running", "duplicate services after its sync", str(duplicates), "0",
         "yes" if duplicates == 0 else "**no**"],
        [f"idle, {n} registered", "registrator CPU, share of one core", f"{fmt(idle, 2)}%", "< 5%",
         "yes" if idle < 5 else "**no**"],
    ]  # fmt: skip
    table = markdown_table(["scenario", "measure", "waypost registrator", "target", "met"], rows)
    notes = [
        f"{STARTERS} parallel `podman start` processes; podman's API service, the dev agent and the "
        "registrator unpinned on the same 2 cores",
        "the agent restart includes up to 2 s until the registrator's poll of the agent notices it",
    ]
    append_results("Registrator", table, f"ratio tail/target {fmt(tail / 5, 2)}, cold/target "
                   f"{fmt(cold / 5, 2)}, idle CPU/target {fmt(idle / 5, 2)}", notes)  # fmt: skip


if __name__ == "__main__":
    main()
