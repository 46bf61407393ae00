"""Forwarded reads: what ``?dc=<other>`` costs over reading the same answer in its own datacenter.

Two dev agents (``dc1`` and ``dc2``, each its own in-memory store) are federated with one
``join -wan``; both run on the server core. ``web`` gets 10 instances in dc2. One
keep-alive client on the client core then alternates rounds of sequential requests:
``/v1/health/service/web?passing`` asked of the dc2 agent itself (the local read) and
``/v1/health/service/web?passing&dc=dc2`` asked of the dc1 agent, which forwards it (the
forwarded read), and the same for a KV key. The result is the added latency of the
forward at p50 and p99. Target: p50 added <= 1 ms.

    python bench/wan_bench.py [--requests 2000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import time

from _common import SyncHttp, agent, append_results, markdown_table, median, percentile, scratch_dir

READS = {
    "health?passing, 10 inst.": "/v1/health/service/web?passing",
    "kv get": "/v1/kv/bench/key",
}


def timed(http: SyncHttp, path: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        status, _, _ = http.request("GET", path)
        out.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per round and read")
    ap.add_argument("--rounds", type=int, default=4)
    opts = ap.parse_args()
    with (
        scratch_dir("wan-bench") as work,
        agent(["-dev", "-node", "far", "-datacenter", "dc2"], work / "dc2.log") as far,
        agent(["-dev", "-node", "near", "-datacenter", "dc1"], work / "dc1.log") as near,
    ):
        near.put(f"/v1/agent/join/127.0.0.1:{far.http_port}?wan=1")
        far_http, near_http = SyncHttp(far.http_port), SyncHttp(near.http_port)
        for i in range(10):
            far_http.json(
                "PUT",
                "/v1/catalog/register",
                {"Node": f"n{i}", "Address": f"10.0.0.{i + 1}", "Service": {"Service": "web", "Port": 80}},
            )
        far_http.json("PUT", "/v1/kv/bench/key", b"x" * 64)
        rows, added_p50 = [], []
        for name, path in READS.items():
            forwarded = f"{path}{'&' if '?' in path else '?'}dc=dc2"
            timed(far_http, path, 200)  # warm both paths (connection pools, caches)
            timed(near_http, forwarded, 200)
            local: list[float] = []
            remote: list[float] = []
            for _ in range(opts.rounds):
                local += timed(far_http, path, opts.requests)
                remote += timed(near_http, forwarded, opts.requests)
            local.sort()
            remote.sort()
            p50 = (median(remote) - median(local)) * 1000
            p99 = (percentile(remote, 0.99) - percentile(local, 0.99)) * 1000
            added_p50.append(p50)
            rows.append(
                [
                    name,
                    f"{median(local) * 1000:.3f} / {percentile(local, 0.99) * 1000:.3f}",
                    f"{median(remote) * 1000:.3f} / {percentile(remote, 0.99) * 1000:.3f}",
                    f"{p50:.3f} / {p99:.3f}",
                ]
            )
        table = markdown_table(
            ["read", "local p50 / p99 ms", "forwarded p50 / p99 ms", "added p50 / p99 ms"], rows
        )
        worst = max(added_p50)
        append_results(
            "WAN: forwarded read vs local read (bench/wan_bench.py)",
            table,
            f"ratio {worst:.3f} (worst added p50 in ms; target <= 1.0)",
            [f"{opts.rounds} rounds x {opts.requests} sequential requests per read, one keep-alive client"],
        )


if __name__ == "__main__":
    main()
