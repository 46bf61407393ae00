"""Blocking-query fan-out: N watchers parked on one service, then one change.

For each N (default 1,000 and 10,000) a fresh dev agent gets ``web`` with 10
instances. A separate client process (asyncio, raw keep-alive sockets, on the client
core) parks N blocking queries ``/v1/health/service/web?index=I&wait=5m`` and, on
command, makes the change itself (a new instance registered, or a check status
flipped, alternately) and times every watcher's complete answer from just before the
change was sent. Also measured:

* agent RSS growth per parked watcher (VmRSS before and after parking);
* agent CPU while one unrelated KV key is written 100 times/s for 5 s, with no
  watchers and with N watchers, and how many watchers that answered (must be 0); the
  same for 100/s registrations of another service (``api``), which shows whether
  watchers are woken internally even when they re-park without answering.

The last line is ``ratio <last-notified ms at the largest N / 250 ms>`` (target <= 1),
followed by the per-watcher memory and the wake-up count.

    python bench/watch_bench.py [--watchers 1000,10000] [--rounds 4] [--write-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time

from _common import (
    HttpConn,
    SyncHttp,
    agent,
    append_results,
    client_argv,
    cpu_seconds,
    fmt,
    markdown_table,
    median,
    percentile,
    raise_nofile,
    rss_kib,
    run_loop,
    scratch_dir,
)

SERVICE_PATH = "/v1/health/service/web"
INSTANCES = 10


def instance(i: int, status: str = "passing") -> dict[str, object]:
    return {
        "Node": f"node{i}",
        "Address": f"10.0.{i // 250}.{i % 250 + 1}",
        "Service": {"ID": "web", "Service": "web", "Port": 8080},
        "Check": {"CheckID": "web-alive", "Name": "alive", "Status": status, "ServiceID": "web"},
    }


# --- client process ------------------------------------------------------------------------------


class Watcher(asyncio.Protocol):
    """One parked blocking query on a raw socket; records when its full answer arrived."""

    def __init__(self, round_: Round) -> None:
        self.round = round_
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def arm(self, index: int) -> None:
        self.buf = b""
        assert self.transport is not None
        self.transport.write(f"GET {SERVICE_PATH}?index={index}&wait=5m HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        cut = head.find(b"content-length:")
        length = int(head[cut + 15 : head.find(b"\r\n", cut)]) if cut >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        cut = head.find(b"x-consul-index:")
        index = int(head[cut + 15 : head.find(b"\r\n", cut)]) if cut >= 0 else 0
        self.buf = b""
        self.round.arrived(index)


class Round:
    """Arrival times of one round of answers."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.times: list[float] = []
        self.index = 0
        self.done = asyncio.get_running_loop().create_future()

    def arrived(self, index: int) -> None:
        self.times.append(time.monotonic())
        self.index = max(self.index, index)
        if len(self.times) == self.n and not self.done.done():
            self.done.set_result(None)

    def reset(self) -> None:
        self.times = []
        self.done = asyncio.get_running_loop().create_future()


async def client(port: int, n: int, index: int) -> None:
    raise_nofile(n + 1024)
    loop = asyncio.get_running_loop()
    rnd = Round(n)
    watchers: list[Watcher] = []
    t_setup = time.monotonic()
    for start in range(0, n, 500):
        made = await asyncio.gather(
            *(
                loop.create_connection(lambda: Watcher(rnd), "127.0.0.1", port)
                for _ in range(start, min(n, start + 500))
            )
        )
        watchers += [w for _, w in made]
    control = await HttpConn(port).open()
    rnd.index = index
    for w in watchers:
        w.arm(index)
    await asyncio.sleep(1.0)
    print(f"ready {time.monotonic() - t_setup:.2f}", flush=True)
    round_no = 0
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line in ("", "quit"):
            break
        if line == "count":
            print(f"count {len(rnd.times)}", flush=True)
            continue
        # "trigger": alternate between a new instance and a check status flip
        round_no += 1
        flip = "warning" if round_no % 4 else "passing"
        change = instance(1000 + round_no) if round_no % 2 else instance(0, flip)
        early = len(rnd.times)
        t0 = time.monotonic()
        status, _, _ = await control.request("PUT", "/v1/catalog/register", json.dumps(change).encode())
        assert status == 200, status
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(rnd.done), 60)
        lat = sorted((t - t0) * 1e3 for t in rnd.times[early:])
        result = {
            "notified": len(lat),
            "early": early,
            "first": lat[0] if lat else float("nan"),
            "p50": percentile(lat, 0.5),
            "p99": percentile(lat, 0.99),
            "max": lat[-1] if lat else float("nan"),
        }
        print("result " + json.dumps(result), flush=True)
        rnd.reset()
        for w in watchers:
            w.arm(rnd.index)
        await asyncio.sleep(1.0)
        print("ready 0", flush=True)
    control.close()
    for w in watchers:
        if w.transport is not None:
            w.transport.close()


# --- orchestrator --------------------------------------------------------------------------------


def expect(proc: subprocess.Popen[str], word: str, timeout: float = 120) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"watch client exited with {proc.wait()}")
        if line.startswith(word + " "):
            return line[len(word) + 1 :].strip()
    raise TimeoutError(f"no {word!r} from the watch client")


def command(proc: subprocess.Popen[str], cmd: str, word: str) -> str:
    assert proc.stdin is not None
    proc.stdin.write(cmd + "\n")
    proc.stdin.flush()
    return expect(proc, word)


def unrelated_writes(http: SyncHttp, pid: int, seconds: float, kind: str, rate: int = 100) -> float:
    """Make ``rate`` unrelated writes a second: one KV key (``kv``) or a registration of
    another service (``svc``). Returns the agent's CPU use in percent of one core."""
    other = {"Node": "other", "Address": "10.9.9.9", "Service": {"ID": "api", "Service": "api", "Port": 1}}
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    for i in range(int(seconds * rate)):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if kind == "kv":
            status = http.request("PUT", "/v1/kv/unrelated/key", str(i).encode())[0]
        else:
            other["Service"]["Port"] = i + 1  # type: ignore[index]
            status = http.request("PUT", "/v1/catalog/register", json.dumps(other).encode())[0]
        assert status == 200, status
    elapsed = time.monotonic() - t0
    return 100 * (cpu_seconds(pid) - cpu0) / elapsed


def measure(n: int, rounds: int, write_seconds: float) -> dict[str, float]:
    raise_nofile(n + 1024)
    # Every watcher connects from 127.0.0.1: lift the per-client cap, as one would on Consul.
    args = ["-dev", "-log-level", "warn", "-hcl", "limits { http_max_conns_per_client = 0 }"]
    with scratch_dir("watch") as tmp, agent(args, tmp / "agent.log") as ours:
        assert ours.proc is not None
        pid = ours.proc.pid
        http = SyncHttp(ours.http_port)
        for i in range(INSTANCES):
            http.json("PUT", "/v1/catalog/register", instance(i))
        _, headers, _ = http.request("GET", SERVICE_PATH)
        index = int(headers["x-consul-index"])
        cpu_idle = {kind: unrelated_writes(http, pid, write_seconds, kind) for kind in ("kv", "svc")}
        time.sleep(0.5)
        rss0 = rss_kib(pid)
        proc = subprocess.Popen(
            client_argv("watch_bench.py", "--client", str(ours.http_port), str(n), str(index)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            setup = float(expect(proc, "ready"))
            rss1 = rss_kib(pid)
            before = int(command(proc, "count", "count"))
            cpu_watch = {kind: unrelated_writes(http, pid, write_seconds, kind) for kind in ("kv", "svc")}
            time.sleep(0.2)
            wakeups = int(command(proc, "count", "count")) - before
            results = []
            for _ in range(rounds):
                results.append(json.loads(command(proc, "trigger", "result")))
                expect(proc, "ready")
                print(f"  N={n} {results[-1]}", flush=True)
        finally:
            if proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
            proc.wait(60)
        http.close()
    return {
        "setup_s": setup,
        "rss_per_watcher_b": (rss1 - rss0) * 1024 / n,
        "rss_growth_mib": (rss1 - rss0) / 1024,
        "cpu_kv_0": cpu_idle["kv"],
        "cpu_kv_n": cpu_watch["kv"],
        "cpu_svc_0": cpu_idle["svc"],
        "cpu_svc_n": cpu_watch["svc"],
        "wakeups": wakeups + sum(r["early"] for r in results),
        "missing": sum(n - r["notified"] for r in results),
        "first": median([r["first"] for r in results]),
        "p50": median([r["p50"] for r in results]),
        "p99": median([r["p99"] for r in results]),
        "max": median([r["max"] for r in results]),
        "worst": max(r["max"] for r in results),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--watchers", default="1000,10000")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--write-seconds", type=float, default=5)
    ap.add_argument("--client", nargs=3, metavar=("PORT", "N", "INDEX"), help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.client:
        port, n, index = (int(x) for x in opts.client)
        run_loop(client(port, n, index))
        return

    rows = []
    stats = {}
    for n in (int(x) for x in opts.watchers.split(",")):
        s = measure(n, opts.rounds, opts.write_seconds)
        stats[n] = s
        rows.append(
            [
                n, fmt(s["setup_s"], 1), fmt(s["first"]), fmt(s["p50"]), fmt(s["p99"]), fmt(s["max"]),
                fmt(s["worst"]), fmt(s["rss_growth_mib"]), fmt(s["rss_per_watcher_b"], 0),
                fmt(s["cpu_kv_0"]), fmt(s["cpu_kv_n"]), fmt(s["cpu_svc_0"]), fmt(s["cpu_svc_n"]),
                int(s["wakeups"]), int(s["missing"]),
            ]
        )  # fmt: skip
        print(rows[-1], flush=True)
    headers = [
        "watchers", "setup s", "first ms", "p50 ms", "p99 ms", "last ms (median)", "last ms (worst)",
        "RSS growth MiB", "B per watcher", "CPU% KV, 0 w", "CPU% KV, N w", "CPU% other svc, 0 w",
        "CPU% other svc, N w", "answers to unrelated writes", "not notified",
    ]  # fmt: skip
    big = stats[max(stats)]
    append_results(
        "Blocking-query fan-out",
        markdown_table(headers, rows),
        f"ratio {big['max'] / 250:.2f} (last notified {big['max']:.0f} ms / 250 ms at {max(stats)} watchers; "
        f"target <= 1) bytes_per_watcher={big['rss_per_watcher_b']:.0f} (target <= 4096) "
        f"unrelated_wakeups={int(sum(s['wakeups'] for s in stats.values()))} (target 0)",
        [
            f"{opts.rounds} changes per size (new instance / check flip, alternating); "
            "latency from just before the change is sent to each watcher's full answer; medians over changes",
            f"unrelated writes, 100/s for {opts.write_seconds:g} s each: one KV key (KV), and re-registering "
            "service `api` on another node (other svc); CPU is the agent's in % of one core, with 0 and N "
            "watchers parked; a watcher woken without a change re-parks silently, so extra CPU with N "
            "watchers is the sign of spurious wake-ups",
        ],
    )


if __name__ == "__main__":
    main()
