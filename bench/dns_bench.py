"""DNS queries per second: waypost against dnsmasq, same box, same records.

Runs dnsperf (UDP, no EDNS) for ``web.service.consul A`` and
``_web._tcp.service.consul SRV`` against dnsmasq and against our server backed by a
static catalog of ``web`` with 10 and with 100 instances. Servers are pinned to one core
and dnsperf to the other; systems alternate run by run so drift hits both alike. The
last line is ``ratio <ours/dnsmasq>``, the geometric mean over A and SRV at 10 instances.

    python bench/dns_bench.py [--seconds 10]

Needs dnsmasq, dnsperf and taskset (Debian: dnsmasq dnsperf util-linux) and uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _common import append_results

ROOT = Path(__file__).resolve().parent.parent
QUERIES = {"A": "web.service.consul. A\n", "SRV": "_web._tcp.service.consul. SRV\n"}
SERVER_CORE, CLIENT_CORE = "1", "0"


def serve(instances: int, port: int) -> None:
    """Child mode: our DNS server with ``instances`` healthy ``web`` instances."""
    import uvloop

    from waypost.dns import DnsServer, Resolver
    from waypost.dns.static import StaticBackend
    from waypost.state.model import Node, NodeService

    backend = StaticBackend()
    nodes = [Node(Node=f"node{i}", Address=f"10.0.{i // 250}.{i % 250 + 1}") for i in range(instances)]
    backend.load(nodes, {n.Node: [NodeService(ID="web", Service="web", Port=8080)] for n in nodes})

    async def main() -> None:
        server = DnsServer(Resolver(backend), "127.0.0.1", port)
        await server.start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with contextlib.suppress(OSError):
                tcp.bind(("127.0.0.1", port))
                return port
    raise RuntimeError("no free port")


@contextlib.contextmanager
def ours(instances: int) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = ["taskset", "-c", SERVER_CORE, sys.executable, __file__, "--serve", str(instances), str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("waypost DNS server did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def dnsmasq() -> Iterator[int]:
    port = free_port()
    cmd = [
        "taskset", "-c", SERVER_CORE, "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
        f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
        "--host-record=web.service.consul,10.0.0.1",
        "--srv-host=_web._tcp.service.consul,web.service.consul,8080", "--cache-size=0",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    try:
        wait_for_udp(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wait_for_udp(port: int) -> None:
    query = bytes.fromhex("abcd0100000100000000000003776562077365727669636506636f6e73756c0000010001")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        for _ in range(50):
            sock.sendto(query, ("127.0.0.1", port))
            with contextlib.suppress(OSError):
                sock.recv(512)
                return
    raise RuntimeError(f"nothing answers on port {port}")


def dnsperf(port: int, query_file: Path, seconds: int) -> float:
    cmd = [
        "taskset", "-c", CLIENT_CORE, "dnsperf", "-s", "127.0.0.1", "-p", str(port),
        "-d", str(query_file), "-l", str(seconds), "-c", "10", "-q", "100", "-T", "1",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Queries per second:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(out)
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of each dnsperf run")
    parser.add_argument("--serve", nargs=2, type=int, metavar=("INSTANCES", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    started = time.monotonic()
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, dnsmasq() as masq, ours(10) as ten, ours(100) as hundred:
        # Per query type: dnsmasq and ours(10) alternate twice, ours(100) once.
        schedule = [("dnsmasq", masq), ("waypost N=10", ten)] * 2 + [("waypost N=100", hundred)]
        for qtype, line in QUERIES.items():
            query_file = Path(tmp) / f"{qtype}.txt"
            query_file.write_text(line)
            for system, port in schedule:
                results.setdefault((system, qtype), []).append(dnsperf(port, query_file, args.seconds))
    rows = ["| system | qtype | qps (runs) | median |", "|---|---|---|---|"]
    for (system, qtype), runs in results.items():
        shown = " / ".join(f"{r:,.0f}" for r in runs)
        rows.append(f"| {system} | {qtype} | {shown} | {statistics.median(runs):,.0f} |")
    ratios = {
        q: statistics.median(results[("waypost N=10", q)]) / statistics.median(results[("dnsmasq", q)])
        for q in QUERIES
    }
    notes = [f"ratio {qtype} (waypost N=10 / dnsmasq): {value:.2f}" for qtype, value in ratios.items()]
    notes.append(f"elapsed {time.monotonic() - started:.0f}s")
    overall = math.prod(ratios.values()) ** (1 / len(ratios))
    append_results("DNS A/SRV queries/s vs dnsmasq", "\n".join(rows), f"ratio {overall:.2f}", notes)


if __name__ == "__main__":
    main()
