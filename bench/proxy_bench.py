"""L4 proxy throughput: ``waypost proxy`` against HAProxy in front of the same nginx backends.

Three nginx servers (one worker each) serve a 1 KiB body; they are registered with a dev
agent as ``bench`` with passing checks. ``waypost proxy`` (its CLI, on uvloop) balances
the service round robin from the catalog; HAProxy (Debian's, ``mode tcp``, one thread,
``balance roundrobin``) proxies the same three addresses from a static configuration. Both
run on the server core, with the backends; wrk (``-t1 -cN --latency``, keep-alive, on the
client core) alternates between them, A/B/A/B, with keep-alive connections (the relay
path) and with a new connection per request (``Connection: close``: accept, balance and
connect on every request). Each cell also reports the proxy's own CPU
per request, which shows the cost difference when the shared core, not the proxy, limits
the rate. The last line is ``ratio <ours/haproxy>``: median requests per second at 64
keep-alive connections. Target: >= 0.5.

    python bench/proxy_bench.py [--seconds 10] [--runs 2] [--conns 1,64] [--close-conns 64]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from _common import (
    SERVER_CORE,
    Server,
    SyncHttp,
    agent,
    append_results,
    cpu_seconds,
    fmt,
    free_port,
    markdown_table,
    median,
    nginx_static,
    pin,
    require,
    run_wrk,
    scratch_dir,
)

BODY = b"x" * 1024
BACKENDS = 3
PATH = "/body"

HAPROXY_CONF = """global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend bench
    bind 127.0.0.1:{port}
    default_backend nginx
backend nginx
    balance roundrobin
{servers}
"""


@contextlib.contextmanager
def backends(workdir: Path) -> Iterator[list[int]]:
    with contextlib.ExitStack() as stack:
        ports = []
        for i in range(BACKENDS):
            folder = workdir / f"b{i}"
            folder.mkdir()
            ports.append(stack.enter_context(nginx_static({PATH: BODY}, folder)).port)
        yield ports


def waypost_proxy(agent_address: str, ports: list[int], workdir: Path) -> Server:
    port, status = free_port(), free_port()
    config = workdir / "proxy.hcl"
    config.write_text(
        f'proxy {{\n  status_addr = "127.0.0.1:{status}"\n  meta_listeners = false\n'
        f'  listener {{\n    service = "bench"\n    bind = "127.0.0.1:{port}"\n  }}\n}}\n'
    )
    argv = [sys.executable, "-m", "waypost", "proxy", "-http-addr", agent_address, "-config", str(config)]
    server = Server([*argv, "-log-level", "warn"], port, workdir / "proxy.log").start()
    pin(server.pid, SERVER_CORE)
    http = SyncHttp(status)
    for _ in range(200):  # until the proxy balances over every backend (at most 10s)
        with contextlib.suppress(OSError):
            if len(http.json("GET", "/v1/proxy/status")["Listeners"][0]["Upstreams"]) == len(ports):
                break
        time.sleep(0.05)
    else:
        raise RuntimeError("waypost proxy did not pick up the backends")
    http.close()
    return server


def haproxy(ports: list[int], workdir: Path) -> Server:
    port = free_port()
    servers = "\n".join(f"    server b{i} 127.0.0.1:{p}" for i, p in enumerate(ports))
    conf = workdir / "haproxy.cfg"
    conf.write_text(HAPROXY_CONF.format(port=port, servers=servers))
    return Server(["haproxy", "-db", "-f", str(conf)], port, workdir / "haproxy.log").start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--conns", default="1,64")
    ap.add_argument(
        "--close-conns", default="64", help="connections for the new-connection-per-request cells"
    )
    opts = ap.parse_args()
    require("wrk", "nginx", "haproxy")
    cells = [(int(x), False) for x in opts.conns.split(",")]
    cells += [(int(x), True) for x in opts.close_conns.split(",") if x]
    results: dict[tuple[str, int, bool], list[tuple[float, float, float]]] = {}
    with (
        scratch_dir("proxy") as workdir,
        agent(["-dev"], log=workdir / "agent.log") as dev,
        backends(workdir) as ports,
    ):
        http = SyncHttp(dev.http_port)
        for i, port in enumerate(ports):
            check = {"CheckID": f"b{i}", "Name": "alive", "Status": "passing", "ServiceID": f"b{i}"}
            service = {"ID": f"b{i}", "Service": "bench", "Port": port}
            body = {"Node": "bench", "Address": "127.0.0.1", "Service": service, "Check": check}
            http.json("PUT", "/v1/catalog/register", body)
        http.close()
        with contextlib.ExitStack() as running:
            ours = waypost_proxy(dev.address, ports, workdir)
            running.callback(ours.stop)
            theirs = haproxy(ports, workdir)
            running.callback(theirs.stop)
            close = workdir / "close.lua"
            close.write_text('wrk.headers["Connection"] = "close"\n')
            for n, new_conns in cells:
                for _ in range(opts.runs):
                    for name, server in (("waypost proxy", ours), ("haproxy", theirs)):
                        cpu = cpu_seconds(server.pid)
                        url = f"http://127.0.0.1:{server.port}{PATH}"
                        r = run_wrk(url, n, opts.seconds, close if new_conns else None)
                        if r.errors:
                            raise RuntimeError(f"{name}: {r.errors} errors at {n} connections")
                        per_request = (cpu_seconds(server.pid) - cpu) / max(1, r.requests) * 1e6
                        results.setdefault((name, n, new_conns), []).append((r.rps, r.p99_ms, per_request))
    rows = []
    for n, new_conns in cells:
        row: list[object] = [f"{n}, new conn per request" if new_conns else f"{n}, keep-alive"]
        for name in ("waypost proxy", "haproxy"):
            runs = results[(name, n, new_conns)]
            row += [fmt(median([r[0] for r in runs]), 0), fmt(median([r[1] for r in runs]), 2)]
            row.append(fmt(median([r[2] for r in runs]), 1))
        rows.append(row)
    headers = ["conns", "waypost req/s", "p99 ms", "CPU us/req", "haproxy req/s", "p99 ms", "CPU us/req"]
    top = max(n for n, new_conns in cells if not new_conns)
    ours_rps, theirs_rps = (
        median([r[0] for r in results[(name, top, False)]]) for name in ("waypost proxy", "haproxy")
    )
    ratio = ours_rps / theirs_rps
    notes = [
        f"wrk -t1, {opts.seconds:g}s x {opts.runs} runs per cell, 1 KiB body",
        "CPU us/req: the proxy process's user+system CPU over the run divided by the requests",
    ]
    append_results(
        "L4 proxy: waypost proxy vs HAProxy (mode tcp), 3 nginx backends",
        markdown_table(headers, rows),
        f"ratio {ratio:.2f}",
        notes,
    )


if __name__ == "__main__":
    main()
