"""Bytes on the wire per change: the delta stream against a blocking query.

A fresh dev agent gets ``web`` with 1,000 instances (one node and one check each). In one
run, side by side, N readers follow it with ``GET /v1/stream/health/service/web`` and N
watchers with the blocking query ``GET /v1/health/service/web?index=I&wait=5m`` (each
re-armed with the index of its last answer, as Consul's clients do). Then C changes are
made one at a time (the next instance's check flipped to critical, back on a second
round), each awaited until every reader and watcher has seen it. Counted: every byte each
side received after its snapshot or first answer (status lines, headers, chunk framing,
bodies), divided by changes and readers.

The last line is ``ratio <blocking bytes per change / stream bytes per change>``.

    python bench/stream_bench.py [--instances 1000] [--readers 10] [--changes 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re

from _common import (
    CLIENT_CORE,
    SyncHttp,
    agent,
    append_results,
    fmt,
    markdown_table,
    pin,
    run_loop,
    scratch_dir,
)

SERVICE = "web"
_ID = re.compile(rb"\nid: (\d+)\n")
_INDEX = re.compile(rb"\r\nX-Consul-Index: (\d+)\r\n", re.I)


def instance(i: int, status: str) -> dict[str, object]:
    return {
        "Node": f"node{i}",
        "Address": f"10.0.{i // 250}.{i % 250 + 1}",
        "Service": {"ID": SERVICE, "Service": SERVICE, "Port": 8080, "Tags": ["v1"]},
        "Check": {"CheckID": "alive", "Name": "alive", "Status": status, "ServiceID": SERVICE},
    }


class Follower:
    """One reader on a raw socket: its bytes after the first answer, and the newest index it saw."""

    def __init__(self) -> None:
        self.bytes = 0
        self.index = 0
        self.seen = asyncio.Event()


async def stream_reader(port: int, follower: Follower, started: asyncio.Event) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    w.write(f"GET /v1/stream/health/service/{SERVICE} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    buf = b""
    while b"event: end-of-snapshot" not in buf:
        buf += await r.read(1 << 20)
    tail = buf[buf.index(b"event: end-of-snapshot") :]
    follower.index = int(_ID.findall(b"\n" + tail)[0])
    started.set()
    while True:
        chunk = await r.read(1 << 20)
        if not chunk:
            return
        follower.bytes += len(chunk)
        ids = _ID.findall(tail + chunk)
        tail = chunk[-64:]
        if ids:
            follower.index = max(follower.index, int(ids[-1]))
            follower.seen.set()


async def blocking_watcher(port: int, follower: Follower, started: asyncio.Event) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    index = 0
    while True:
        query = f"?index={index}&wait=5m" if index else ""
        w.write(f"GET /v1/health/service/{SERVICE}{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = await r.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        await r.readexactly(length)
        index = int(_INDEX.search(head).group(1))  # type: ignore[union-attr]
        if follower.index:
            follower.bytes += len(head) + length
        follower.index = index
        follower.seen.set()
        started.set()


async def run(port: int, http: SyncHttp, readers: int, changes: int, instances: int) -> dict[str, float]:
    streams = [Follower() for _ in range(readers)]
    watchers = [Follower() for _ in range(readers)]
    starts = [asyncio.Event() for _ in range(2 * readers)]
    tasks = [asyncio.create_task(stream_reader(port, f, s)) for f, s in zip(streams, starts, strict=False)]
    tasks += [
        asyncio.create_task(blocking_watcher(port, f, s))
        for f, s in zip(watchers, starts[readers:], strict=True)
    ]
    async with asyncio.timeout(120):
        await asyncio.gather(*(s.wait() for s in starts))
    for n in range(changes):
        target = max(f.index for f in streams + watchers) + 1
        status = "critical" if (n // instances) % 2 == 0 else "passing"
        await asyncio.to_thread(http.json, "PUT", "/v1/catalog/register", instance(n % instances, status))
        async with asyncio.timeout(60):
            for f in streams + watchers:
                while f.index < target:
                    f.seen.clear()
                    await f.seen.wait()
    for task in tasks:
        task.cancel()
    return {name: sum(f.bytes for f in group) / changes / readers for name, group in
            (("stream", streams), ("blocking", watchers))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    pin(os.getpid(), CLIENT_CORE)
    with scratch_dir("stream-bench") as tmp, agent(["-dev", "-node", "bench"], log=tmp / "agent.log") as a:
        http = SyncHttp(a.http_port)
        for i in range(args.instances):
            http.json("PUT", "/v1/catalog/register", instance(i, "passing"))
        per = run_loop(run(a.http_port, http, args.readers, args.changes, args.instances))
        http.close()
    rows = [["delta stream", fmt(per["stream"], 0)], ["blocking query", fmt(per["blocking"], 0)]]
    table = markdown_table(["reader", "bytes per change per reader"], rows)
    ratio = per["blocking"] / per["stream"]
    notes = [
        f"{args.instances} instances of one service, {args.readers} readers of each kind, "
        f"{args.changes} check flips one at a time, all readers in one run"
    ]
    append_results("Delta stream vs blocking query", table, f"ratio {fmt(ratio, 0)}", notes)


if __name__ == "__main__":
    main()
