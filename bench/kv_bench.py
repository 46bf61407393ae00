"""Durable KV writes and reads: waypost's sqlite store against a single-member etcd.

Starts a server agent (``-server -bootstrap-expect 1 -data-dir``, SQLite with
synchronous=FULL, one group commit per batch) and a single-member etcd with its
default durability, both on local disk and pinned to the server core. wrk (Lua
scripts written by this script) drives 256-byte puts over 1,000 keys and gets of
those keys: ours through ``PUT/GET /v1/kv/bench/kN``, etcd through its JSON gateway
(``POST /v3/kv/put`` and ``/v3/kv/range``, linearizable, its default). Systems
alternate run by run. The last line is ``ratio put=<ours/etcd> get=<ours/etcd>`` at
the highest client count. Targets: put >= 1.0, get >= 3.0.

    python bench/kv_bench.py [--seconds 10] [--runs 2] [--clients 1,32]
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

from _common import (
    SyncHttp,
    agent,
    append_results,
    etcd,
    fmt,
    markdown_table,
    median,
    require,
    run_wrk,
    scratch_dir,
)

KEYS = 1000
VALUE = b"v" * 256

_OURS_LUA = """
local i = 0
local value = string.rep("v", 256)
request = function()
  i = i + 1
  {call}
end
"""

_ETCD_LUA = """
local i = 0
local bodies = {{{bodies}}}
request = function()
  i = i + 1
  return wrk.format("POST", "{path}", {{["Content-Type"] = "application/json"}}, bodies[(i % {n}) + 1])
end
"""


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def write_scripts(d: Path) -> dict[tuple[str, str], tuple[str, Path]]:
    """(system, op) -> (URL path, Lua script)."""
    scripts = {
        ("ours", "put"): (
            "/v1/kv/bench/k0",
            'return wrk.format("PUT", "/v1/kv/bench/k" .. (i % N), nil, value)',
        ),
        ("ours", "get"): ("/v1/kv/bench/k0", 'return wrk.format("GET", "/v1/kv/bench/k" .. (i % N))'),
    }
    out: dict[tuple[str, str], tuple[str, Path]] = {}
    for (system, op), (path, call) in scripts.items():
        f = d / f"{system}-{op}.lua"
        f.write_text(_OURS_LUA.format(call=call.replace("N", str(KEYS))))
        out[system, op] = (path, f)
    keys = [b64(f"bench/k{i}".encode()) for i in range(KEYS)]
    put = ",".join(f'\'{{"key":"{k}","value":"{b64(VALUE)}"}}\'' for k in keys)
    rng = ",".join(f'\'{{"key":"{k}"}}\'' for k in keys)
    for op, path, bodies in (("put", "/v3/kv/put", put), ("get", "/v3/kv/range", rng)):
        f = d / f"etcd-{op}.lua"
        f.write_text(_ETCD_LUA.format(bodies=bodies, path=path, n=KEYS))
        out["etcd", op] = (path, f)
    return out


def preload(ours: SyncHttp, etcd_http: SyncHttp) -> None:
    for i in range(KEYS):
        assert ours.request("PUT", f"/v1/kv/bench/k{i}", VALUE)[0] == 200
        body = f'{{"key":"{b64(f"bench/k{i}".encode())}","value":"{b64(VALUE)}"}}'.encode()
        assert etcd_http.request("POST", "/v3/kv/put", body)[0] == 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--clients", default="1,32")
    opts = ap.parse_args()
    require("wrk", "etcd")
    clients = [int(x) for x in opts.clients.split(",")]

    rows: list[list[object]] = []
    top: dict[str, float] = {}
    with scratch_dir("kv") as tmp:
        server_args = ["-server", "-bootstrap-expect", "1", "-data-dir", str(tmp / "data")]
        server_args += ["-log-level", "warn"]
        with agent(server_args, tmp / "agent.log") as ours, etcd(tmp) as baseline:
            scripts = write_scripts(tmp)
            ports = {"ours": ours.http_port, "etcd": baseline.port}
            preload(SyncHttp(ours.http_port), SyncHttp(baseline.port))
            for op in ("put", "get"):
                for c in clients:
                    res: dict[str, list[tuple[float, float, float]]] = {"ours": [], "etcd": []}
                    errors = 0
                    for _ in range(opts.runs):  # A/B/A/B
                        for system in ("ours", "etcd"):
                            path, script = scripts[system, op]
                            r = run_wrk(f"http://127.0.0.1:{ports[system]}{path}", c, opts.seconds, script)
                            res[system].append((r.rps, r.p50_ms, r.p99_ms))
                            errors += r.errors
                    med = {s: [median([x[k] for x in v]) for k in range(3)] for s, v in res.items()}
                    ratio = med["ours"][0] / med["etcd"][0]
                    top[op] = ratio
                    row = [
                        op, c, fmt(med["ours"][0]), fmt(med["ours"][1], 2), fmt(med["ours"][2], 2),
                        fmt(med["etcd"][0]), fmt(med["etcd"][1], 2), fmt(med["etcd"][2], 2),
                        f"{ratio:.2f}", errors,
                    ]  # fmt: skip
                    rows.append(row)
                    print(" ".join(str(v) for v in row), flush=True)

    headers = [
        "op", "clients", "ours rps", "ours p50 ms", "ours p99 ms",
        "etcd rps", "etcd p50 ms", "etcd p99 ms", "ours/etcd", "errors",
    ]  # fmt: skip
    append_results(
        "KV durable put/get vs etcd (single member)",
        markdown_table(headers, rows),
        f"ratio put={top['put']:.2f} get={top['get']:.2f} (ours/etcd at {clients[-1]} clients; "
        "targets put >= 1.0, get >= 3.0)",
        [
            f"wrk -t1 -cN -d{opts.seconds:g}s --latency -s <lua>, {opts.runs} runs per system, interleaved",
            "256 B values over 1,000 keys; ours: sqlite synchronous=FULL; etcd: default (fsync per batch)",
        ],
    )


if __name__ == "__main__":
    main()
