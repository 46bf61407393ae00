"""Cluster simulator: thousands of simulated client agents against 3 servers on a 3-member etcd.

Starts a 3-member etcd and 3 server agents (``-server -store etcd://...``), then N
simulated client agents in this one asyncio process (``sim_node.py``): each joins one
server (member record, lease, liveness key, node + services + checks, over the servers'
``/v1/internal/store`` API), heartbeats its lease and runs anti-entropy against its
replica at the intervals a real agent of a cluster that size uses (``agent.pacing``; the
configured ``--heartbeat`` and ``--ae`` are stretched as there), and keeps its replica by
the same stream a real client agent holds (``/v1/internal/store/stream``: members,
liveness, leader, ACLs, CA roots, its own rows). Each node follows ``--follow``
services' health by the delta stream, and ``--blocking-share`` of them also by a
blocking query, on its server's HTTP port.
Joins run at most ``--join-concurrency`` at a time, bounded by ``--join-seconds``; the
replica streams open after them, all from one revision.

Then, for ``--seconds``, churn: ``--churn`` percent of all instances change health per
minute (a random instance's check flips, written by its own node), and ``--restarts``
percent of nodes restart per minute (liveness key gone, member record and liveness key
written again: three changes every node's replica is sent). Measured over that window:
the delay from each write to every subscriber of that service (stream and blocking query)
and from each membership change to every node's replica, bytes received per change per
subscriber and per node, CPU and RSS of each server and etcd member, and etcd's own
counters (``/metrics``).

The last line is ``ratio <stream p99 ms / 1000 ms>`` (target: under 1 s at 5,000 nodes).

    python bench/cluster_sim.py [--nodes 1000] [--seconds 60] [--churn 1] [--restarts 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import random
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _common import (
    CLIENT_CORE,
    AgentProcess,
    agent,
    append_results,
    cpu_seconds,
    fmt,
    markdown_table,
    percentile,
    pin,
    raise_nofile,
    rss_kib,
    run_loop,
    scratch_dir,
)
from sim_node import MEMBERSHIP, Ledger, SimNode, follow_blocking, follow_stream

from waypost.agent.pacing import ae_wait, liveness_pace, scale_factor
from waypost.client import ApiClient
from waypost.config.model import Duration, Liveness

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from etcd_cluster import EtcdCluster, etcd_cluster

SERVERS = 3
ETCD_COUNTERS = {
    "etcd_server_proposals_committed_total": "proposals",
    "etcd_disk_wal_fsync_duration_seconds_count": "WAL fsyncs",
    "etcd_mvcc_put_total": "puts",
    "etcd_network_client_grpc_received_bytes_total": "client bytes in",
    "etcd_network_client_grpc_sent_bytes_total": "client bytes out",
}


def etcd_counters(cluster: EtcdCluster) -> dict[str, float]:
    """The counters of ``ETCD_COUNTERS`` summed over members."""
    total = dict.fromkeys(ETCD_COUNTERS, 0.0)
    for member in cluster.members:
        with urllib.request.urlopen(f"{member.client_url}/metrics", timeout=10) as resp:
            for line in resp.read().decode().splitlines():
                name, _, value = line.partition(" ")
                if name in total:
                    total[name] += float(value)
    return total


@contextmanager
def cluster(tmp: Path) -> Iterator[tuple[EtcdCluster, list[AgentProcess]]]:
    (tmp / "etcd").mkdir()
    with etcd_cluster(tmp / "etcd", members=3) as store, ExitStack() as stack:
        servers = []
        for i in range(SERVERS):
            args = ["-server", "-store", store.url, "-bind", "127.0.0.1", "-node", f"server-{i}"]
            args += ["-data-dir", str(tmp / f"server-{i}"), "-log-level", "warn"]
            servers.append(stack.enter_context(agent(args, tmp / f"server-{i}.log")))
        yield store, servers


def processes(store: EtcdCluster, servers: list[AgentProcess]) -> dict[str, int]:
    pids = {f"server-{i}": s.proc.pid for i, s in enumerate(servers) if s.proc is not None}
    pids.update({f"etcd {m.name}": m.process.pid for m in store.members if m.process is not None})
    return pids


async def forever(wait: Callable[[], float], action: Callable[[], Awaitable[object]], offset: float) -> None:
    """Call ``action()`` from ``offset`` on, ``wait()`` seconds apart; a failure is counted, not fatal."""
    await asyncio.sleep(offset)
    while True:
        try:
            await action()
        except Exception as exc:  # the run reports failures; one node's error ends nothing
            failed(exc)
        await asyncio.sleep(wait())


FAILURES: dict[str, int] = {}


def failed(exc: Exception) -> None:
    FAILURES[type(exc).__name__] = FAILURES.get(type(exc).__name__, 0) + 1


async def restarts(
    nodes: list[SimNode], period: float, until: float, rng: random.Random, ledger: Ledger
) -> None:
    """A random node restarts every ``period`` seconds (the first after half of one) until
    ``until`` (monotonic); its membership changes go to the ledger."""
    due = time.monotonic() + period / 2
    while due < until:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        try:
            for revision, written in await rng.choice(nodes).restart():
                ledger.changed(MEMBERSHIP, revision, written)
        except Exception as exc:  # counted like the nodes' own failures
            failed(exc)
        due += period


async def loop_lag(lags: list[float], period: float = 0.05) -> None:
    """How late this process's event loop wakes: the part of every delay that is the simulator's."""
    while True:
        start = time.monotonic()
        await asyncio.sleep(period)
        lags.append(time.monotonic() - start - period)


async def alive(server: AgentProcess, members: int) -> None:
    """Until the leader has marked every member's ``serfHealth`` passing: the churn window
    must not carry the joins' own writes."""
    async with ApiClient(server.address) as api:
        while True:
            resp = await api.get("/v1/health/state/passing", {"filter": 'CheckID == "serfHealth"'})
            if len(resp.json()) >= members:
                return
            await asyncio.sleep(1.0)


async def simulate(
    opts: argparse.Namespace, store: EtcdCluster, servers: list[AgentProcess]
) -> tuple[list[list[object]], float]:
    rng = random.Random(7)
    per_service = max(1, opts.nodes * opts.per_node // opts.services)
    names = [f"svc-{k}" for k in range(opts.services)]
    nodes = [
        SimNode(i, [names[(i * opts.per_node + j) % opts.services] for j in range(opts.per_node)],
                servers[i % SERVERS].server_port)
        for i in range(opts.nodes)
    ]  # fmt: skip
    ledger = Ledger()
    tasks: list[asyncio.Task[None]] = []
    members = opts.nodes + SERVERS
    pace = liveness_pace(configured_liveness(opts.heartbeat), members)

    def sync_wait() -> float:
        return ae_wait(opts.ae, members, rng.random())

    t0 = time.monotonic()
    gate = asyncio.Semaphore(opts.join_concurrency)

    async def join(node: SimNode) -> None:
        async with gate:
            await node.join(pace.deadline)
        offset = rng.random() * pace.interval
        tasks.append(asyncio.create_task(forever(lambda: pace.interval, node.heartbeat, offset)))
        tasks.append(asyncio.create_task(forever(sync_wait, node.anti_entropy, sync_wait())))

    async with asyncio.timeout(opts.join_seconds):
        await asyncio.gather(*(join(n) for n in nodes))
        await alive(servers[0], opts.nodes + SERVERS)
    joined = time.monotonic() - t0
    print(f"{opts.nodes} nodes joined in {joined:.1f}s", flush=True)

    ready = []
    start = await nodes[0].revision()
    for i, node in enumerate(nodes):
        ready.append(asyncio.Event())
        tasks.append(asyncio.create_task(node.watch(start, ledger, ready[-1])))
        if i % 100 == 99:
            await asyncio.sleep(0)
    subscribers: dict[str, dict[str, int]] = {"stream": {}, "blocking": {}}
    for i in range(opts.nodes):
        port = servers[i % SERVERS].http_port
        follows = [follow_stream]
        if int((i + 1) * opts.blocking_share) > int(i * opts.blocking_share):
            follows.append(follow_blocking)
        for f in range(opts.follow):
            service = names[(i * 7 + f * 13 + 3) % opts.services]
            for follow in follows:
                kind = subscribers["stream" if follow is follow_stream else "blocking"]
                kind[service] = kind.get(service, 0) + 1
                ready.append(asyncio.Event())
                tasks.append(asyncio.create_task(follow(port, nodes[i].source, service, ledger, ready[-1])))
        if i % 100 == 99:
            await asyncio.sleep(0)  # let the first answers in before opening more
    async with asyncio.timeout(opts.join_seconds):
        await asyncio.gather(*(r.wait() for r in ready))
    print(f"{len(ready)} subscriptions ready after {time.monotonic() - t0:.1f}s", flush=True)
    gc.freeze()  # thousands of nodes and connections: full collections here would stall every subscriber

    pids = processes(store, servers)
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    counters0 = await asyncio.to_thread(etcd_counters, store)
    requests0 = sum(n.requests for n in nodes)
    watches0 = sum(n.watches for n in nodes)
    ledger.recording = True
    lags: list[float] = []
    tasks.append(asyncio.create_task(loop_lag(lags)))
    sim_cpu0 = cpu_seconds(os.getpid())
    instances = opts.nodes * opts.per_node
    period = 60.0 / (instances * opts.churn / 100)
    changes: list[str] = []
    window = time.monotonic()
    deadline = window + opts.seconds
    every = 60.0 / (opts.nodes * opts.restarts / 100) if opts.restarts > 0 else math.inf
    restarting = asyncio.create_task(restarts(nodes, every, deadline, random.Random(11), ledger))
    while time.monotonic() < deadline:
        node = rng.choice(nodes)
        service = rng.choice(node.services)
        written = time.monotonic()
        try:
            ledger.changed(service, await node.flip(service), written)
            changes.append(service)
        except Exception as exc:  # counted like the nodes' own failures
            failed(exc)
        await asyncio.sleep(max(0.0, written + period - time.monotonic()))
    await restarting
    elapsed = time.monotonic() - window
    cpu = {name: (cpu_seconds(pid) - cpu0[name]) / elapsed for name, pid in pids.items()}
    rss = {name: rss_kib(pid) for name, pid in pids.items()}
    sim_cpu = (cpu_seconds(os.getpid()) - sim_cpu0) / elapsed
    lags = sorted(lags)  # the window's; the sampler goes on appending to its own list
    counters1 = await asyncio.to_thread(etcd_counters, store)
    requests = sum(n.requests for n in nodes) - requests0
    watches = sum(n.watches for n in nodes) - watches0
    membership = len(ledger.changes.get(MEMBERSHIP, []))
    expected = {kind: sum(subs.get(s, 0) for s in changes) for kind, subs in subscribers.items()}
    expected["replica"] = membership * opts.nodes
    for _ in range(int(opts.settle * 2)):  # the last changes' deliveries, bounded
        if all(len(ledger.delays(k)) >= n for k, n in expected.items()):
            break
        await asyncio.sleep(0.5)
    ledger.recording = False
    load_started = time.monotonic()
    load_bytes = await nodes[0].load_scope()
    load_ms = (time.monotonic() - load_started) * 1000
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for node in nodes:
        node.conn.close()

    rows: list[list[object]] = [
        [
            "nodes / instances / services",
            f"{opts.nodes} / {instances} / {opts.services} ({per_service} each)",
        ],
        ["join (all nodes, s)", fmt(joined, 1)],
        [
            f"pacing at {members} members: heartbeat / failure deadline / mean full sync s",
            f"{fmt(pace.interval, 1)} / {fmt(pace.deadline, 1)} / "
            f"{fmt(opts.ae * (1 + scale_factor(members) / 2), 0)}",
        ],
        ["changes in window / per s", f"{len(changes)} / {fmt(len(changes) / elapsed, 2)}"],
        ["membership changes in window (3 per restart)", str(membership)],
        ["agent-to-server requests per s (heartbeats, anti-entropy, changes)", fmt(requests / elapsed, 0)],
        ["replica stream frames per s (all nodes)", fmt(watches / elapsed, 0)],
    ]
    p99 = {}
    for kind, per in (("stream", "change"), ("blocking", "change"), ("replica", "membership change")):
        d = ledger.delays(kind)
        p99[kind] = percentile(d, 0.99) * 1000 if d else float("nan")
        rows.append([f"{kind}: deliveries seen / expected", f"{len(d)} / {expected[kind]}"])
        spread = " / ".join(fmt(percentile(d, q) * 1000, 0) for q in (0.5, 0.99, 1.0)) if d else "-"
        rows.append([f"{kind}: {per} to subscriber p50 / p99 / max ms", spread])
        received = ledger.received.get("replica, membership answers" if kind == "replica" else kind, 0)
        rows.append([f"{kind}: bytes per {per} per subscriber", fmt(received / max(expected[kind], 1), 0)])
    rows.append(
        [
            "replica: bytes per node per s, all answers",
            fmt(ledger.received.get("replica", 0) / opts.nodes / elapsed, 1),
        ]
    )
    rows.append(
        [
            "replica: one node's start-up load of its scope, bytes / ms",
            f"{fmt(load_bytes, 0)} / {fmt(load_ms, 0)}",
        ]
    )
    total_cpu = sum(v for k, v in cpu.items() if k.startswith("server"))
    rows.append(
        [
            "servers: CPU cores in all / per 1,000 nodes",
            f"{fmt(total_cpu, 2)} / {fmt(total_cpu * 1000 / opts.nodes, 3)}",
        ]
    )
    for name in pids:
        rows.append([f"{name}: CPU cores / RSS MiB", f"{fmt(cpu[name], 2)} / {fmt(rss[name] / 1024, 0)}"])
    for counter, label in ETCD_COUNTERS.items():
        rows.append(
            [f"etcd (3 members) {label} per s", fmt((counters1[counter] - counters0[counter]) / elapsed, 0)]
        )
    lag = " / ".join(fmt(percentile(lags, q) * 1000, 0) for q in (0.5, 0.99, 1.0))
    rows.append(["simulator: CPU cores / event-loop lag p50 / p99 / max ms", f"{fmt(sim_cpu, 2)} / {lag}"])
    rows.append(["failed simulated requests", ", ".join(f"{k}: {v}" for k, v in FAILURES.items()) or "0"])
    return rows, p99["stream"]


def configured_liveness(heartbeat: float | None) -> Liveness:
    """The agents' liveness settings: the default heartbeat, stretched with the cluster, or
    ``heartbeat`` seconds as configured, kept as set."""
    if heartbeat is None:
        return Liveness()
    return Liveness(heartbeat_interval=Duration(f"{heartbeat:g}s"), heartbeat_scaled=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--per-node", type=int, default=2, help="service instances per node")
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--follow", type=int, default=1, help="services each node follows")
    ap.add_argument(
        "--blocking-share", type=float, default=0.1,
        help="share of nodes that also follow by blocking query, for comparison",
    )  # fmt: skip
    ap.add_argument(
        "--churn", type=float, default=1.0, help="percent of instances changing health per minute"
    )
    ap.add_argument("--restarts", type=float, default=0.1, help="percent of nodes restarting per minute")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument(
        "--heartbeat", type=float, default=None,
        help="configured heartbeat interval, seconds, kept as set (default: 1 s, stretched with the cluster)",
    )  # fmt: skip
    ap.add_argument(
        "--ae", type=float, default=60.0, help="ae_interval, seconds (stretched with the cluster)"
    )
    ap.add_argument("--join-concurrency", type=int, default=32)
    ap.add_argument("--join-seconds", type=float, default=300)
    ap.add_argument("--settle", type=float, default=10, help="seconds to wait for the last deliveries")
    opts = ap.parse_args()
    raise_nofile(20000)
    pin(os.getpid(), CLIENT_CORE)
    with scratch_dir("cluster-sim") as tmp, cluster(tmp) as (store, servers):
        rows, p99 = run_loop(simulate(opts, store, servers))
    heartbeat = "default" if opts.heartbeat is None else f"{opts.heartbeat:g}s"
    notes = [
        f"{opts.nodes} simulated client agents in one process, {opts.per_node} instances each, each "
        f"holding its replica's stream and following {opts.follow} service(s) by stream "
        f"({opts.blocking_share:g} of them also by blocking query); heartbeat {heartbeat} and "
        f"ae_interval {opts.ae:g}s, both paced by cluster size; churn {opts.churn:g}% of instances "
        f"and restarts of {opts.restarts:g}% of nodes per minute for {opts.seconds:g}s",
        "3 server agents (etcd store) and 3 etcd members on one 2-core machine; delays are from the "
        "write's start to the subscriber reading it, in the simulator's own event loop",
    ]
    append_results(
        f"Cluster simulator, {opts.nodes} nodes",
        markdown_table(["measure", "value"], rows),
        f"ratio {p99 / 1000:.2f} (stream change-to-subscriber p99 / 1 s; target < 1)",
        notes,
    )


if __name__ == "__main__":
    main()
