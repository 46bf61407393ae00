"""Connect data plane throughput: bulk bytes through mTLS sidecars vs the plain built-in proxy.

Both pipelines run in one child process on the server core, on uvloop, with the data
planes ``waypost proxy`` uses: *plain* is one TCP listener balancing to a sink (the
built-in proxy); *mTLS* is an upstream listener that opens mTLS (``web``'s leaf) to an
inbound listener terminating it (``db``'s leaf, each connection authorized by its SPIFFE
URI) in front of the same sink, i.e. the two sidecar hops of a Connect connection.
Certificates come from a dev agent's CA through its HTTP API. The load generator (client
core) opens ``--conns`` connections, each writing ``--mib`` MiB in 64 KiB chunks; a run
ends when the sink has counted every byte. Runs alternate plain/mTLS; the table reports
median MiB/s, and the last line ``ratio <mtls/plain>``.

    python bench/connect_bench.py [--conns 1,16] [--mib 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    CLIENT_CORE,
    SERVER_CORE,
    agent,
    append_results,
    fmt,
    markdown_table,
    median,
    pin,
    run_loop,
    scratch_dir,
)

CHUNK = b"x" * 65536


async def _serve(address: str) -> None:
    """The child: a sink, the plain pipeline and the mTLS pipeline; prints their ports."""
    from waypost.client import ApiClient
    from waypost.proxy.config import ListenerConfig, OutlierConfig
    from waypost.proxy.mtls import Certificates, peer_uri
    from waypost.proxy.outlier import OutlierDetector
    from waypost.proxy.pool import Pool
    from waypost.proxy.tcp import TcpListener, Tls
    from waypost.proxy.upstreams import Selector, Upstream, UpstreamUpdate

    received = 0

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        while data := await reader.read(1 << 20):
            received += len(data)
        writer.close()

    def pool(port: int) -> Pool:
        p = Pool(ListenerConfig("bench", "127.0.0.1", 0), OutlierDetector(OutlierConfig()))
        p.update(UpstreamUpdate(Selector("bench"), 1, (Upstream("127.0.0.1", port, 1, "", "bench"),)))
        return p

    async def admit(transport: asyncio.Transport) -> bool:
        return peer_uri(transport)[0].endswith("/svc/web")

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    sink_port = server.sockets[0].getsockname()[1]
    async with ApiClient(address) as api:
        db, web = Certificates(api, "db"), Certificates(api, "web")
        async with asyncio.timeout(30):
            await asyncio.gather(db.start(), web.start())
        plain = TcpListener(pool(sink_port))
        inbound = TcpListener(pool(sink_port), Tls(server=db.server, admit=admit))
        for plane in (plain, inbound):
            await plane.start()
        outbound = TcpListener(pool(inbound.port), Tls(client=web.client))
        await outbound.start()
        print(json.dumps({"plain": plain.port, "mtls": outbound.port}), flush=True)
        loop = asyncio.get_running_loop()
        while True:  # one line per run: answer with the bytes the sink has counted
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            print(received, flush=True)


async def _push(port: int, conns: int, mib: int) -> None:
    async def one() -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(mib * 16):
            writer.write(CHUNK)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(one() for _ in range(conns)))


def _sink_total(child: subprocess.Popen[str]) -> int:
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write("?\n")
    child.stdin.flush()
    return int(child.stdout.readline())


def _run(child: subprocess.Popen[str], port: int, conns: int, mib: int) -> float:
    """MiB/s from the first byte written until the sink counted the last one (bounded)."""
    start_total = _sink_total(child)
    want = start_total + conns * mib * (1 << 20)
    start = time.perf_counter()
    run_loop(_push(port, conns, mib))
    deadline = time.monotonic() + 120
    while _sink_total(child) < want:
        if time.monotonic() > deadline:
            raise RuntimeError("the sink never received every byte")
        time.sleep(0.005)
    return conns * mib / (time.perf_counter() - start)


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        run_loop(_serve(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", default="1,16")
    parser.add_argument("--mib", type=int, default=64, help="MiB written per connection")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    levels = [int(c) for c in args.conns.split(",")]
    pin(0, CLIENT_CORE)
    rows, ratios = [], []
    with scratch_dir("connect-bench") as tmp, agent(["-dev"], log=Path(tmp) / "agent.log") as dev:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", dev.address],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            pin(child.pid, SERVER_CORE)
            assert child.stdout is not None
            ports = json.loads(child.stdout.readline())
            for conns in levels:
                plain, mtls = [], []
                for _ in range(args.runs):
                    plain.append(_run(child, ports["plain"], conns, args.mib))
                    mtls.append(_run(child, ports["mtls"], conns, args.mib))
                ratio = median(mtls) / median(plain)
                ratios.append(ratio)
                rows.append([conns, fmt(median(plain)), fmt(median(mtls)), fmt(ratio, 2)])
        finally:
            child.kill()
            child.wait(timeout=10)
    table = markdown_table(["conns", "plain proxy MiB/s", "mTLS sidecars MiB/s", "mTLS/plain"], rows)
    notes = [
        f"{args.mib} MiB per connection in 64 KiB writes; median of {args.runs} runs, alternating",
        "mTLS: two hops (upstream listener, then the inbound sidecar) with TLS on the hop between them",
    ]
    append_results(
        "Connect: mTLS sidecar pair vs the plain built-in proxy", table, f"ratio {ratios[-1]:.2f}", notes
    )


if __name__ == "__main__":
    main()
