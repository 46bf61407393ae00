"""HAProxy control: catalog changes per second that ``waypost proxy -haproxy`` applies to a
real HAProxy through its runtime API, with no reload.

A dev agent holds ``--instances`` instances of ``bench`` (catalog registrations with a
check each). ``waypost proxy -haproxy -haproxy-bin haproxy`` (the real CLI) starts
Debian's HAProxy in master-worker mode with one listener. Each change flips one
instance's check between passing and critical; the script then polls HAProxy's own
``show servers state`` until the servers in service are the expected set. Two figures:

* one at a time: the next change is made only once HAProxy shows the previous one, so
  changes/s is the inverse of the full catalog-to-HAProxy latency (also reported, p50/p99);
* burst: ``--changes`` flips written back to back, timed until HAProxy shows the last set.

HAProxy's worker pid is read before and after: a reload would start a new worker, so an
unchanged pid means every change was applied at run time. The last line is
``ratio <changes/s one at a time>/<10 per second target>``.

    python bench/haproxy_control_bench.py [--instances 10] [--changes 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time

from _common import (
    SERVER_CORE,
    Server,
    SyncHttp,
    agent,
    append_results,
    fmt,
    free_port,
    markdown_table,
    percentile,
    pin,
    require,
    run_loop,
    scratch_dir,
)

from waypost.proxy.haproxy_runtime import RuntimeClient

TARGET = 10.0
"""Changes per second one at a time: each within 100 ms end to end."""


def register(http: SyncHttp, i: int, port: int, passing: bool) -> None:
    check = {"CheckID": f"c{i}", "Name": "alive", "Status": "passing" if passing else "critical",
             "ServiceID": f"i{i}"}  # fmt: skip
    service = {"ID": f"i{i}", "Service": "bench", "Port": port}
    http.json("PUT", "/v1/catalog/register", {"Node": "bench", "Address": "127.0.0.1", "Service": service,
                                               "Check": check})  # fmt: skip


async def until(runtime: RuntimeClient, want: set[int], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if {s.port for s in await runtime.servers() if s.ready} == want:
                return
        await asyncio.sleep(0.002)
    raise RuntimeError(f"HAProxy did not show {sorted(want)} within {limit}s")


async def measure(http: SyncHttp, runtime: RuntimeClient, ports: list[int], changes: int) -> dict[str, float]:
    up = set(ports)
    await until(runtime, up)
    pid = await runtime.worker_pid()
    latencies = []
    start = time.monotonic()
    for n in range(changes):
        i = n % len(ports)
        t0 = time.monotonic()
        passing = ports[i] not in up
        register(http, i, ports[i], passing)
        up = up | {ports[i]} if passing else up - {ports[i]}
        await until(runtime, up)
        latencies.append(time.monotonic() - t0)
    one_at_a_time = changes / (time.monotonic() - start)
    start = time.monotonic()
    for n in range(changes):
        i = n % len(ports)
        passing = ports[i] not in up
        register(http, i, ports[i], passing)
        up = up | {ports[i]} if passing else up - {ports[i]}
    await until(runtime, up)
    burst = changes / (time.monotonic() - start)
    latencies.sort()
    return {
        "one": one_at_a_time,
        "burst": burst,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "reloads": float(await runtime.worker_pid() != pid),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--changes", type=int, default=200)
    opts = ap.parse_args()
    require("haproxy")
    with scratch_dir("haproxy-control") as workdir, agent(["-dev"], log=workdir / "agent.log") as dev:
        http = SyncHttp(dev.http_port)
        ports = [free_port() for _ in range(opts.instances)]
        for i, port in enumerate(ports):
            register(http, i, port, True)
        listen = free_port()
        config = workdir / "proxy.hcl"
        config.write_text(f'proxy {{\n  meta_listeners = false\n  listener {{\n    service = "bench"\n'
                          f'    bind = "127.0.0.1:{listen}"\n  }}\n}}\n')  # fmt: skip
        admin = str(workdir / "admin.sock")
        argv = [sys.executable, "-m", "waypost", "proxy", "-http-addr", dev.address, "-config", str(config),
                "-log-level", "warn", "-haproxy", str(workdir / "haproxy.cfg"), "-haproxy-socket", admin,
                "-haproxy-bin", "haproxy"]  # fmt: skip
        proxy = Server(argv, listen, workdir / "proxy.log").start()
        try:
            pin(proxy.pid, SERVER_CORE)
            result = run_loop(measure(http, RuntimeClient(admin), ports, opts.changes))
        finally:
            proxy.stop()
            http.close()
    headers = [
        "instances",
        "changes",
        "one at a time changes/s",
        "p50 ms",
        "p99 ms",
        "burst changes/s",
        "reloads",
    ]
    row = [opts.instances, opts.changes, fmt(result["one"], 0), fmt(result["p50"], 1), fmt(result["p99"], 1),
           fmt(result["burst"], 0), int(result["reloads"])]  # fmt: skip
    append_results(
        "HAProxy control: catalog changes applied through the runtime API, no reload",
        markdown_table(headers, [row]),
        f"ratio {result['one'] / TARGET:.2f}",
        [
            "a change flips one instance's check (catalog register); done when show servers state shows it",
            "reloads: 1 if HAProxy's worker pid changed during the run (a reload), else 0",
        ],
    )


if __name__ == "__main__":
    main()
