"""Memory: a 100,000-instance catalog and 5,000 parked blocking queries, in server RSS.

Two agents, one after the other: ``-dev`` (memory store) and a server
(``-server -bootstrap-expect 1 -data-dir``, the durable SQLite store). Each is loaded
with ``--nodes`` nodes of ``--per-node`` instances (one passing check each; the
instances of ``scale_bench.py``, 100 services) through ``PUT /v1/txn``, a whole node
(its node, service and check operations) per transaction group of at most 126
operations, by a separate process on the client core. Then, per agent:

* VmRSS empty and loaded (after the load, once RSS has settled: two readings a second
  apart within 1%);
* ``--parked`` blocking queries ``/v1/health/service/svc-0?index=<current>&wait=5m``
  parked on raw keep-alive sockets (one per query, as HTTP/1.1 answers in order) by
  a client process, and the RSS growth per parked query.

Reference in the same run: a single-member etcd holding the same store keys and
values (the records' msgpack encodings, written with ``/v3/kv/txn``, 128 puts per
transaction), its RSS empty and loaded.

The last line is ``ratio <server RSS MiB / 150 MiB> <bytes per parked query / 2048>``
(targets <= 1).

    python bench/memory_bench.py [--nodes 10000] [--per-node 10] [--parked 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    SyncHttp,
    agent,
    append_results,
    client_argv,
    etcd,
    fmt,
    markdown_table,
    raise_nofile,
    rss_kib,
    run_loop,
    scratch_dir,
)
from scale_bench import QUERY, SERVICES, registration

from waypost.state import schema
from waypost.state.model import HealthCheck, Node, NodeService

TXN_OPS = 126
ETCD_OPS = 128
RSS_TARGET_MIB = 150
PARKED_TARGET_B = 2048


# --- load client -----------------------------------------------------------------------------


def node_ops(node: int, per_node: int) -> list[dict[str, Any]]:
    """Consul /v1/txn operations registering one node with its instances and checks."""
    regs = [registration(node, slot, per_node) for slot in range(per_node)]
    ops: list[dict[str, Any]] = [
        {"Node": {"Verb": "set", "Node": {"Node": regs[0]["Node"], "Address": regs[0]["Address"]}}}
    ]
    for reg in regs:
        ops.append({"Service": {"Verb": "set", "Node": reg["Node"], "Service": reg["Service"]}})
        ops.append({"Check": {"Verb": "set", "Check": {"Node": reg["Node"], **reg["Check"]}}})  # type: ignore[dict-item]
    return ops


def agent_batches(nodes: int, per_node: int) -> Iterator[bytes]:
    group = max(1, TXN_OPS // (1 + 2 * per_node))
    for start in range(0, nodes, group):
        ops = [op for n in range(start, min(nodes, start + group)) for op in node_ops(n, per_node)]
        yield json.dumps(ops).encode()


def store_records(nodes: int, per_node: int) -> Iterator[tuple[str, bytes]]:
    """The keys and values the agent's store holds for the same catalog."""
    for n in range(nodes):
        regs = [registration(n, slot, per_node) for slot in range(per_node)]
        name = str(regs[0]["Node"])
        yield schema.NODES.key(name), schema.encode(Node(Node=name, Address=str(regs[0]["Address"])))
        for reg in regs:
            svc: dict[str, Any] = reg["Service"]  # type: ignore[assignment]
            chk: dict[str, Any] = reg["Check"]  # type: ignore[assignment]
            yield schema.SERVICES.key(name, svc["ID"]), schema.encode(NodeService(**svc))
            check = HealthCheck(Node=name, ServiceName=svc["Service"], ServiceTags=svc["Tags"], **chk)
            yield schema.CHECKS.key(name, chk["CheckID"]), schema.encode(check)


def etcd_batches(nodes: int, per_node: int) -> Iterator[bytes]:
    puts: list[dict[str, Any]] = []
    for key, value in store_records(nodes, per_node):
        put = {"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value).decode()}
        puts.append({"request_put": put})
        if len(puts) == ETCD_OPS:
            yield json.dumps({"success": puts}).encode()
            puts = []
    if puts:
        yield json.dumps({"success": puts}).encode()


def load(port: int, path: str, batches: Iterator[bytes], clients: int) -> dict[str, float]:
    """``clients`` keep-alive connections taking batches from one iterator (etcd's gateway
    answers large transactions chunked, which ``SyncHttp`` reads)."""
    lock = threading.Lock()
    counts = {"batches": 0, "errors": 0}

    def worker() -> None:
        http = SyncHttp(port)
        while True:
            with lock:
                body = next(batches, None)
            if body is None:
                break
            status, _, answer = http.request("PUT" if path == "/v1/txn" else "POST", path, body)
            with lock:
                counts["batches" if status == 200 else "errors"] += 1
            if status != 200:
                print(f"load error {status} {answer[:200]!r}", file=sys.stderr, flush=True)
                break
        http.close()

    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker) for _ in range(clients)]:
            future.result()
    return {**counts, "seconds": time.monotonic() - t0}


class Parked(asyncio.Protocol):
    """A parked blocking query on its own socket; counts an answer if one ever comes."""

    answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        Parked.answered += 1


async def park(port: int, n: int, index: int) -> None:
    raise_nofile(n + 1024)
    loop = asyncio.get_running_loop()
    request = f"GET {QUERY}&index={index}&wait=5m HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    parked: list[Parked] = []
    for start in range(0, n, 250):
        made = await asyncio.gather(
            *(loop.create_connection(Parked, "127.0.0.1", port) for _ in range(start, min(n, start + 250)))
        )
        for _, p in made:
            p.transport.write(request)
            parked.append(p)
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)
    print(f"parked {len(parked)} answered {Parked.answered}", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    print(f"answered {Parked.answered}", flush=True)
    for p in parked:
        p.transport.close()


# --- orchestrator ----------------------------------------------------------------------------


def settled_rss(pid: int, limit: float = 30.0) -> int:
    """VmRSS once two readings a second apart differ by under 1% (bounded by ``limit`` s)."""
    deadline = time.monotonic() + limit
    last = rss_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = rss_kib(pid)
        if abs(now - last) <= last / 100:
            return now
        last = now
    return last


def run_load(port: int, kind: str, opts: argparse.Namespace) -> dict[str, float]:
    argv = client_argv("memory_bench.py", "--client", kind, str(port), str(opts.nodes), str(opts.per_node))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=opts.max_seconds, check=True)
    result: dict[str, float] = json.loads(out.stdout.rsplit("result ", 1)[1])
    if result["errors"]:
        sys.exit(f"{kind} load failed: {out.stderr[-2000:]}")
    return result


def current_index(port: int) -> int:
    http = SyncHttp(port)
    status, headers, _ = http.request("GET", QUERY)
    http.close()
    assert status == 200, status
    return int(headers["x-consul-index"])


def parked_growth(pid: int, port: int, n: int) -> tuple[float, int]:
    """Bytes of RSS per parked query, and how many were answered early (must be 0)."""
    index = current_index(port)
    before = settled_rss(pid)
    argv = client_argv("memory_bench.py", "--client", "park", str(port), str(n), str(index))
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("parked"):
            proc.kill()
            sys.exit(f"parking failed: {line!r}")
        after = settled_rss(pid)
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        early = int(line.split()[-1])
        proc.wait(60)
    return (after - before) * 1024 / n, early


def measure_agent(args: list[str], log: Path, opts: argparse.Namespace) -> dict[str, float]:
    with agent(args, log) as ours:
        assert ours.proc is not None
        pid = ours.proc.pid
        empty = settled_rss(pid)
        loaded = run_load(ours.http_port, "agent", opts)
        full = settled_rss(pid)
        per_parked, early = parked_growth(pid, ours.http_port, opts.parked)
    return {
        "empty": empty,
        "loaded": full,
        "seconds": loaded["seconds"],
        "parked": per_parked,
        "early": early,
    }


def measure_etcd(tmp: Path, opts: argparse.Namespace) -> dict[str, float]:
    with etcd(tmp) as server:
        empty = settled_rss(server.pid)
        loaded = run_load(server.port, "etcd", opts)
        full = settled_rss(server.pid)
    return {"empty": empty, "loaded": full, "seconds": loaded["seconds"]}


def client_main(kind: str, port: int, a: int, b: int) -> None:
    if kind == "park":
        run_loop(park(port, a, b))
        return
    if kind == "agent":
        result = load(port, "/v1/txn", agent_batches(a, b), 4)
    else:
        result = load(port, "/v3/kv/txn", etcd_batches(a, b), 4)
    print("result " + json.dumps(result), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--per-node", type=int, default=10, help="instances per node (divides 100)")
    ap.add_argument("--parked", type=int, default=5000)
    ap.add_argument("--max-seconds", type=float, default=300, help="bound on each load")
    ap.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.client:
        client_main(opts.client[0], *(int(x) for x in opts.client[1:]))
        return
    assert SERVICES % opts.per_node == 0
    raise_nofile(opts.parked + 1024)
    instances = opts.nodes * opts.per_node
    keys = opts.nodes * (1 + 2 * opts.per_node)
    results: dict[str, dict[str, float]] = {}
    with scratch_dir("memory") as tmp:
        common = ["-log-level", "warn", "-hcl", "limits { http_max_conns_per_client = 0 }"]
        results["dev"] = measure_agent(["-dev", *common], tmp / "dev.log", opts)
        server = ["-server", "-bootstrap-expect", "1", "-data-dir", str(tmp / "data"), *common]
        results["server"] = measure_agent(server, tmp / "server.log", opts)
        results["etcd"] = measure_etcd(tmp, opts)

    def mib(kib: float) -> str:
        return f"{kib / 1024:.0f}"

    def per(r: dict[str, float], count: int) -> str:
        return fmt((r["loaded"] - r["empty"]) * 1024 / count, 0)

    etcd_r = results["etcd"]
    rows = []
    for name, label in (("dev", "waypost -dev (memory store)"), ("server", "waypost server (sqlite store)")):
        r = results[name]
        rows.append([
            label, mib(r["empty"]), mib(r["loaded"]), per(r, instances), per(r, keys),
            f"{(r['loaded'] - r['empty']) / max(1, etcd_r['loaded'] - etcd_r['empty']):.2f}",
            fmt(r["seconds"], 1), fmt(r["parked"], 0), int(r["early"]),
        ])  # fmt: skip
    rows.append([
        "etcd (same keys and values)", mib(etcd_r["empty"]), mib(etcd_r["loaded"]), per(etcd_r, instances),
        per(etcd_r, keys), "1.00", fmt(etcd_r["seconds"], 1), "-", "-",
    ])  # fmt: skip
    headers = ["system", "RSS empty MiB", "RSS loaded MiB", "B per instance", "B per store key",
               "growth vs etcd", "load s", "B per parked query", "answered early"]  # fmt: skip
    srv = results["server"]
    append_results(
        "Memory: 100k-instance catalog and parked blocking queries",
        markdown_table(headers, rows),
        f"ratio {srv['loaded'] / 1024 / RSS_TARGET_MIB:.2f} (server RSS {srv['loaded'] / 1024:.0f} MiB / "
        f"{RSS_TARGET_MIB} MiB) {srv['parked'] / PARKED_TARGET_B:.2f} (server {srv['parked']:.0f} B per "
        f"parked query / {PARKED_TARGET_B} B); targets <= 1",
        [
            f"{instances:,} instances on {opts.nodes:,} nodes ({keys:,} store keys) through /v1/txn, "
            f"{TXN_OPS} operations at most per transaction, 4 connections; etcd through /v3/kv/txn, "
            f"{ETCD_OPS} puts per transaction",
            f"{opts.parked:,} blocking queries `{QUERY}&index=<current>&wait=5m` on the loaded agent, one "
            "raw socket each; RSS read once settled (two readings 1 s apart within 1%)",
        ],
    )


if __name__ == "__main__":
    main()
