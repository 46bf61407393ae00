"""Registration churn: register + deregister cycles per second, and how fast a change shows.

A dev agent takes cycles of ``PUT /v1/agent/service/register`` (a service with a TTL
check) followed by ``PUT /v1/agent/service/deregister/<id>`` from C concurrent clients
in a separate process (asyncio, keep-alive, on the client core), for a bounded time
and count per level. Then, one change at a time, it measures how long a registration
and a deregistration take to become visible:

* over DNS (``vis.service.consul A`` polled every millisecond over UDP) when the agent
  answers DNS, which is probed with ``dig`` first;
* otherwise over HTTP: a blocking query on ``/v1/health/service/vis`` parked before
  the change, timed until it answers.

The last line is ``ratio <cycles/s at the highest level / 1000>`` (target >= 1: the
reference suite asks for >= 1k registrations/s on one node).

    python bench/churn_bench.py [--seconds 5] [--levels 1,8,32] [--samples 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import subprocess
import time

from _common import (
    HttpConn,
    agent,
    append_results,
    client_argv,
    fmt,
    markdown_table,
    percentile,
    require,
    run_loop,
    scratch_dir,
)

MAX_CYCLES = 200_000


def service(sid: str, name: str = "churn", address: str = "10.1.0.1", status: str = "") -> bytes:
    check = {"TTL": "30s", "Status": status} if status else {"TTL": "30s"}
    body = {"ID": sid, "Name": name, "Address": address, "Port": 8080, "Check": check}
    return json.dumps(body).encode()


# --- load client -----------------------------------------------------------------------------


async def churn(port: int, clients: int, seconds: float) -> dict[str, float]:
    conns = [await HttpConn(port).open() for _ in range(clients)]
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = 0

    async def worker(w: int, conn: HttpConn) -> None:
        nonlocal errors
        k = 0
        while time.monotonic() < deadline and len(latencies) < MAX_CYCLES:
            sid = f"churn-{w}-{k}"
            k += 1
            t0 = time.monotonic()
            s1, _, _ = await conn.request("PUT", "/v1/agent/service/register", service(sid))
            s2, _, _ = await conn.request("PUT", f"/v1/agent/service/deregister/{sid}")
            latencies.append(time.monotonic() - t0)
            errors += (s1 != 200) + (s2 != 200)

    t0 = time.monotonic()
    await asyncio.gather(*(worker(w, c) for w, c in enumerate(conns)))
    elapsed = time.monotonic() - t0
    for c in conns:
        c.close()
    lat = sorted(latencies)
    return {
        "cycles": len(lat),
        "rate": len(lat) / elapsed,
        "p50": percentile(lat, 0.5) * 1e3,
        "p99": percentile(lat, 0.99) * 1e3,
        "errors": errors,
    }


# --- visibility ------------------------------------------------------------------------------


def dns_query(name: str) -> bytes:
    qid = random.randrange(1 << 16)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + struct.pack(">HH", 1, 1)


def dns_answers(sock: socket.socket, name: str) -> int | None:
    """ANCOUNT of one UDP query, or None when nothing answered within 200 ms."""
    sock.send(dns_query(name))
    try:
        reply = sock.recv(4096)
    except TimeoutError:
        return None
    return int(struct.unpack(">H", reply[6:8])[0])


def dns_works(port: int) -> bool:
    try:
        out = subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(port), "consul.service.consul", "+time=1", "+tries=1"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "status:" in out.stdout


async def visibility(port: int, dns_port: int | None, samples: int) -> dict[str, list[float]]:
    """Milliseconds from sending a change to seeing it, for registrations and deregistrations."""
    control = await HttpConn(port).open()
    watcher = await HttpConn(port).open()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", dns_port or 9))
    sock.settimeout(0.2)
    out: dict[str, list[float]] = {"register": [], "deregister": []}
    for i in range(samples):
        for kind in ("register", "deregister"):
            if kind == "register":
                req = (
                    "PUT",
                    "/v1/agent/service/register",
                    service("vis-1", "vis", f"10.2.0.{i % 250 + 1}", "passing"),
                )
            else:
                req = ("PUT", "/v1/agent/service/deregister/vis-1", b"")
            if dns_port is None:
                _, headers, _ = await watcher.request("GET", "/v1/health/service/vis")
                watcher.send("GET", f"/v1/health/service/vis?index={headers['x-consul-index']}&wait=10s")
                await asyncio.sleep(0.01)
                t0 = time.monotonic()
                status, _, _ = await control.request(*req)
                await watcher.receive()
            else:
                t0 = time.monotonic()
                status, _, _ = await control.request(*req)
                want_present = kind == "register"
                while True:
                    count = dns_answers(sock, "vis.service.consul")
                    if count is not None and (count > 0) == want_present:
                        break
                    if time.monotonic() - t0 > 5:
                        raise TimeoutError(f"DNS never showed the {kind}")
                    await asyncio.sleep(0.001)
            out[kind].append((time.monotonic() - t0) * 1e3)
            assert status == 200, status
    control.close()
    watcher.close()
    sock.close()
    return out


# --- orchestrator ----------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--client", nargs=3, metavar=("PORT", "CLIENTS", "SECONDS"), help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.client:
        result = run_loop(churn(int(opts.client[0]), int(opts.client[1]), float(opts.client[2])))
        print("result " + json.dumps(result), flush=True)
        return
    require("dig")

    rows = []
    rates = []
    with scratch_dir("churn") as tmp, agent(["-dev", "-log-level", "warn"], tmp / "agent.log") as ours:
        for level in (int(x) for x in opts.levels.split(",")):
            out = subprocess.run(
                client_argv("churn_bench.py", "--client", str(ours.http_port), str(level), str(opts.seconds)),
                capture_output=True,
                text=True,
                timeout=opts.seconds + 120,
                check=True,
            )
            r = json.loads(out.stdout.rsplit("result ", 1)[1])
            rates.append(r["rate"])
            rows.append([level, r["cycles"], fmt(r["rate"]), fmt(r["p50"], 2), fmt(r["p99"], 2), r["errors"]])
            print(rows[-1], flush=True)
        dns = dns_works(ours.dns_port)
        vis = run_loop(visibility(ours.http_port, ours.dns_port if dns else None, opts.samples))

    via = "DNS (UDP A query polled every 1 ms)" if dns else "HTTP blocking query (DNS not answering)"
    vis_rows = [
        [
            kind,
            len(v),
            fmt(percentile(sorted(v), 0.5), 2),
            fmt(percentile(sorted(v), 0.99), 2),
            fmt(max(v), 2),
        ]
        for kind, v in vis.items()
    ]
    table = markdown_table(["clients", "cycles", "cycles/s", "cycle p50 ms", "cycle p99 ms", "errors"], rows)
    table += "\n\nVisibility via " + via + ":\n\n"
    table += markdown_table(["change", "samples", "p50 ms", "p99 ms", "max ms"], vis_rows)
    append_results(
        "Registration churn",
        table,
        f"ratio {rates[-1] / 1000:.2f} (register+deregister cycles/s at {opts.levels.split(',')[-1]} clients "
        "/ 1,000; target >= 1)",
        [
            f"dev agent (memory store); {opts.seconds:g} s per level, at most {MAX_CYCLES:,} cycles; "
            "a cycle is one register (TTL check) plus one deregister",
            f"visibility: time from sending the change to seeing it, {opts.samples} samples each, "
            "one change at a time (the instance's TTL check starts passing so DNS lists it); "
            f"DNS answering: {'yes' if dns else 'no'}",
        ],
    )


if __name__ == "__main__":
    main()
