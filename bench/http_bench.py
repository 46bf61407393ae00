"""HTTP read throughput: waypost against nginx serving the identical body as a static file.

Registers ``web`` with 10 and then 100 instances (each with a passing check) through
/v1/catalog/register on a dev agent, fetches the answers of
``/v1/health/service/web?passing`` and ``/v1/catalog/service/web`` from the agent, and
has nginx (one worker) serve those exact bytes from files. wrk (``-t1 -cN --latency``,
on the client core) then alternates between the two servers for each cell. The last
line is ``ratio <ours/nginx>``: the median over all cells of the per-cell ratio of
median requests per second. Target: >= 0.3.

    python bench/http_bench.py [--seconds 10] [--runs 2] [--instances 10,100] [--conns 1,64]
"""

from __future__ import annotations

import argparse

from _common import (
    SyncHttp,
    agent,
    append_results,
    fmt,
    markdown_table,
    median,
    nginx_static,
    require,
    run_wrk,
    scratch_dir,
)

PATHS = {
    "health?passing": ("/v1/health/service/web", "?passing"),
    "catalog": ("/v1/catalog/service/web", ""),
}


def register(http: SyncHttp, start: int, stop: int) -> None:
    for i in range(start, stop):
        http.json(
            "PUT",
            "/v1/catalog/register",
            {
                "Node": f"node{i}",
                "Address": f"10.0.{i // 250}.{i % 250 + 1}",
                "Service": {"ID": "web", "Service": "web", "Port": 8080, "Tags": ["v1"]},
                "Check": {"CheckID": "web-alive", "Name": "alive", "Status": "passing", "ServiceID": "web"},
            },
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--instances", default="10,100")
    ap.add_argument("--conns", default="1,64")
    opts = ap.parse_args()
    require("wrk", "nginx")
    sizes = [int(x) for x in opts.instances.split(",")]
    conns = [int(x) for x in opts.conns.split(",")]

    rows: list[list[object]] = []
    ratios: list[float] = []
    with scratch_dir("http") as tmp, agent(["-dev", "-log-level", "warn"], tmp / "agent.log") as ours:
        http = SyncHttp(ours.http_port)
        registered = 0
        for n in sizes:
            register(http, registered, n)
            registered = n
            bodies = {}
            for label, (path, query) in PATHS.items():
                status, _, body = http.request("GET", path + query)
                assert status == 200, (label, status)
                assert body.count(b'"Node"') >= n, label
                bodies[label] = body
            files = {path: bodies[label] for label, (path, _) in PATHS.items()}
            with nginx_static(files, tmp / f"n{n}") as nginx:
                for label, (path, query) in PATHS.items():
                    for c in conns:
                        got: dict[str, list[float]] = {"ours": [], "nginx": []}
                        p99: dict[str, list[float]] = {"ours": [], "nginx": []}
                        errors = 0
                        for _ in range(opts.runs):  # A/B/A/B
                            for name, port in (("ours", ours.http_port), ("nginx", nginx.port)):
                                r = run_wrk(f"http://127.0.0.1:{port}{path}{query}", c, opts.seconds)
                                got[name].append(r.rps)
                                p99[name].append(r.p99_ms)
                                errors += r.errors
                        ratio = median(got["ours"]) / median(got["nginx"])
                        ratios.append(ratio)
                        row = [
                            label, n, len(bodies[label]), c,
                            fmt(median(got["ours"])), fmt(median(p99["ours"]), 2),
                            fmt(median(got["nginx"])), fmt(median(p99["nginx"]), 2),
                            f"{ratio:.2f}", errors,
                        ]  # fmt: skip
                        rows.append(row)
                        print(" ".join(str(v) for v in row), flush=True)
        http.close()

    headers = [
        "endpoint", "instances", "body B", "conns", "ours rps", "ours p99 ms",
        "nginx rps", "nginx p99 ms", "ours/nginx", "errors",
    ]  # fmt: skip
    overall = median(ratios)
    append_results(
        "HTTP reads vs nginx static file",
        markdown_table(headers, rows),
        f"ratio {overall:.2f} (ours/nginx, median over cells; target >= 0.3)",
        [f"wrk -t1 -cN -d{opts.seconds:g}s --latency, {opts.runs} runs per system, interleaved; medians"],
    )


if __name__ == "__main__":
    main()
