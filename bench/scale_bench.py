"""Catalog scale: load 10,000 nodes with 100,000 service instances into a server agent.

A server agent (``-server -bootstrap-expect 1 -data-dir``, the durable SQLite store)
is loaded through ``PUT /v1/catalog/register`` (one node + one instance + one passing
check per request) by a separate process with C concurrent keep-alive connections,
bounded by ``--max-seconds``. Instances are spread so that each of 100 services has
nodes / 10 instances (1,000 at full size). Then:

* agent RSS after the load (VmRSS), compared with the reference floor of 73-90 MiB
  for 100k bare instance records;
* ``GET /v1/health/service/svc-0?passing`` (1,000 instances): wrk at 1 and 16
  connections (served from the answer cache), and the cold latency of the same read
  right after a check on that service changed (p50/p99 of ``--cold`` samples);
* the agent is stopped and started again on the same data directory: time until it
  answers HTTP, until the 1,000-instance answer is complete, and RSS after restart.

The last line is ``ratio <RSS MiB / 200 MiB>`` (the reference suite's target is <= 2x
the floor, 200 MiB).

    python bench/scale_bench.py [--nodes 10000] [--per-node 10] [--clients 32] [--max-seconds 240]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time

from _common import (
    SERVER_CORE,
    AgentProcess,
    HttpConn,
    SyncHttp,
    agent,
    append_results,
    client_argv,
    fmt,
    markdown_table,
    percentile,
    pin,
    require,
    rss_kib,
    run_loop,
    run_wrk,
    scratch_dir,
)

SERVICES = 100
QUERY = "/v1/health/service/svc-0?passing"


def registration(node: int, slot: int, per_node: int, status: str = "passing") -> dict[str, object]:
    name = f"svc-{(node % (SERVICES // per_node)) * per_node + slot}"
    return {
        "Node": f"node{node}",
        "Address": f"10.{node // 65536}.{node // 256 % 256}.{node % 256}",
        "Service": {"ID": name, "Service": name, "Port": 8000 + slot, "Tags": ["v1"]},
        "Check": {"CheckID": f"{name}-alive", "Name": "alive", "Status": status, "ServiceID": name},
    }


# --- load client -----------------------------------------------------------------------------


async def load(port: int, nodes: int, per_node: int, clients: int, seconds: float) -> dict[str, float]:
    jobs = ((n, j) for j in range(per_node) for n in range(nodes))
    deadline = time.monotonic() + seconds
    done = errors = 0

    async def worker() -> None:
        nonlocal done, errors
        conn = await HttpConn(port).open()
        for n, j in jobs:
            if time.monotonic() > deadline:
                break
            body = json.dumps(registration(n, j, per_node)).encode()
            status, _, _ = await conn.request("PUT", "/v1/catalog/register", body)
            done += status == 200
            errors += status != 200
        conn.close()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.monotonic() - t0
    return {"loaded": done, "errors": errors, "seconds": elapsed, "rate": done / elapsed}


# --- orchestrator ----------------------------------------------------------------------------


def cold_reads(http: SyncHttp, per_node: int, samples: int) -> list[float]:
    """Milliseconds for the health read right after a check of that service changed."""
    out = []
    for i in range(samples):
        status = "warning" if i % 2 == 0 else "passing"
        http.json("PUT", "/v1/catalog/register", registration(0, 0, per_node, status))
        t0 = time.perf_counter()
        code, _, body = http.request("GET", QUERY)
        out.append((time.perf_counter() - t0) * 1e3)
        assert code == 200, code
        assert body
    return sorted(out)


def instances_of_svc0(http: SyncHttp) -> int:
    status, _, body = http.request("GET", QUERY)
    return len(json.loads(body)) if status == 200 else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10000)
    ap.add_argument("--per-node", type=int, default=10, help="services per node (divides 100)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--max-seconds", type=float, default=240)
    ap.add_argument("--seconds", type=float, default=5, help="wrk duration per read measurement")
    ap.add_argument("--cold", type=int, default=30)
    ap.add_argument("--client", nargs=5, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.client:
        port, nodes, per_node, clients = (int(x) for x in opts.client[:4])
        result = run_loop(load(port, nodes, per_node, clients, float(opts.client[4])))
        print("result " + json.dumps(result), flush=True)
        return
    require("wrk")
    assert SERVICES % opts.per_node == 0

    with scratch_dir("scale") as tmp:
        args = ["-server", "-bootstrap-expect", "1", "-data-dir", str(tmp / "data"), "-log-level", "warn"]
        with agent(args, tmp / "agent.log") as ours:
            assert ours.proc is not None
            rss_empty = rss_kib(ours.proc.pid)
            argv = [str(ours.http_port), str(opts.nodes), str(opts.per_node), str(opts.clients)]
            out = subprocess.run(
                client_argv("scale_bench.py", "--client", *argv, str(opts.max_seconds)),
                capture_output=True,
                text=True,
                timeout=opts.max_seconds + 120,
                check=True,
            )
            loaded = json.loads(out.stdout.rsplit("result ", 1)[1])
            print(f"loaded {loaded}", flush=True)
            time.sleep(1)
            rss_loaded = rss_kib(ours.proc.pid)
            http = SyncHttp(ours.http_port)
            size = instances_of_svc0(http)
            reads = {
                c: run_wrk(f"http://127.0.0.1:{ours.http_port}{QUERY}", c, opts.seconds) for c in (1, 16)
            }
            cold = cold_reads(http, opts.per_node, opts.cold)
            http.close()
            port, dns_port = ours.http_port, ours.dns_port

        # restart on the same data directory, same ports
        again = AgentProcess(args, http_port=port, dns_port=dns_port, log_path=tmp / "agent.log")
        t0 = time.monotonic()
        again.start(timeout=300)
        t_http = time.monotonic() - t0
        assert again.proc is not None
        pin(again.proc.pid, SERVER_CORE)
        http = SyncHttp(port)
        while instances_of_svc0(http) < size and time.monotonic() - t0 < 300:
            time.sleep(0.05)
        t_full = time.monotonic() - t0
        rss_restarted = rss_kib(again.proc.pid)
        http.close()
        again.stop()

    instances = loaded["loaded"]
    rows = [
        ["instances registered", f"{instances:,} of {opts.nodes * opts.per_node:,} ({opts.nodes:,} nodes)"],
        ["load rate (registrations/s)", f"{fmt(loaded['rate'])} ({opts.clients} clients)"],
        ["load errors", loaded["errors"]],
        ["load time s", fmt(loaded["seconds"], 1)],
        ["RSS empty / loaded / after restart MiB", f"{rss_empty / 1024:.0f} / {rss_loaded / 1024:.0f} / "
         f"{rss_restarted / 1024:.0f}"],
        ["RSS per instance B", fmt((rss_loaded - rss_empty) * 1024 / max(1, instances), 0)],
        [f"health read, {size} instances, 1 conn: rps / p50 / p99 ms",
         f"{fmt(reads[1].rps)} / {reads[1].p50_ms:.2f} / {reads[1].p99_ms:.2f}"],
        [f"health read, {size} instances, 16 conns: rps / p50 / p99 ms",
         f"{fmt(reads[16].rps)} / {reads[16].p50_ms:.2f} / {reads[16].p99_ms:.2f}"],
        ["cold health read after a change: p50 / p99 ms",
         f"{percentile(cold, 0.5):.2f} / {percentile(cold, 0.99):.2f}"],
        ["restart: HTTP answering s", f"{t_http:.2f}"],
        [f"restart: full {size:,}-instance answer s", f"{t_full:.2f}"],
    ]  # fmt: skip
    mib = rss_loaded / 1024
    append_results(
        "Catalog scale",
        markdown_table(["measure", "value"], rows),
        f"ratio {mib / 200:.2f} (RSS {mib:.0f} MiB with {instances:,} instances / 200 MiB; target <= 1)",
        [
            f"server agent, sqlite store; load bounded to {opts.max_seconds:g} s; "
            f"wrk -t1 -cN -d{opts.seconds:g}s --latency for the reads; {opts.cold} cold samples",
        ],
    )


if __name__ == "__main__":
    main()
