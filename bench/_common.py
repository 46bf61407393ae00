"""What every benchmark script shares: processes, pinning, wrk, a tiny HTTP client, results.

Rules the scripts follow (see docs/benchmarks.md):

* everything listens on 127.0.0.1 only and is started and stopped by the script;
* the system under test runs on core ``SERVER_CORE`` and load generators on
  ``CLIENT_CORE`` (when the machine has two cores or more);
* load is bounded in count and in time; a baseline is measured in the same run, with
  the systems interleaved A/B/A/B, and the scripts report medians and ratios;
* the result table is printed and appended, with the command and date, to
  docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waypost.testing import AgentProcess, free_port

__all__ = [
    "CLIENT_CORE",
    "RESULTS",
    "SERVER_CORE",
    "AgentProcess",
    "HttpConn",
    "Server",
    "SyncHttp",
    "WrkResult",
    "agent",
    "append_results",
    "client_argv",
    "cpu_seconds",
    "etcd",
    "fmt",
    "free_port",
    "markdown_table",
    "median",
    "nginx_static",
    "percentile",
    "pin",
    "raise_nofile",
    "require",
    "rss_kib",
    "run_loop",
    "run_wrk",
    "scratch_dir",
]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks.md"
MULTICORE = (os.cpu_count() or 1) > 1
SERVER_CORE = 1 if MULTICORE else 0
CLIENT_CORE = 0


# --- environment -----------------------------------------------------------------------


def require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        sys.exit(f"missing tools: {' '.join(missing)} (Debian: wrk nginx-light etcd-server dnsutils)")


def raise_nofile(want: int) -> int:
    """Raise this process's open-file limit (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory on a real disk (``BENCH_TMPDIR`` overrides the default)."""
    with tempfile.TemporaryDirectory(prefix=f"waypost-{prefix}-", dir=os.environ.get("BENCH_TMPDIR")) as d:
        os.chmod(d, 0o755)  # nginx workers run unprivileged and must read the bodies
        yield Path(d)


def pin(pid: int, core: int) -> None:
    """Pin every thread of ``pid`` (threads started later inherit the main thread's mask)."""
    if not MULTICORE:
        return
    with contextlib.suppress(FileNotFoundError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(tid), {core})


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- processes ---------------------------------------------------------------------------


@contextlib.contextmanager
def agent(args: Sequence[str], log: Path | None = None, timeout: float = 60.0) -> Iterator[AgentProcess]:
    """A waypost agent on 127.0.0.1, pinned to the server core."""
    proc = AgentProcess(list(args), log_path=log)
    proc.start(timeout)
    assert proc.proc is not None
    pin(proc.proc.pid, SERVER_CORE)
    try:
        yield proc
    finally:
        proc.stop()


class Server:
    """A baseline server (nginx, etcd) in its own process group, pinned to the server core."""

    def __init__(self, argv: Sequence[str], port: int, log: Path) -> None:
        self.argv = list(argv)
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> Server:
        prefix = ["taskset", "-c", str(SERVER_CORE)] if MULTICORE and shutil.which("taskset") else []
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*prefix, *self.argv], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.argv[0]} did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


_NGINX_CONF = """worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp;
  proxy_temp_path {d}/tmp;
  fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp;
  scgi_temp_path {d}/tmp;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
{locations}
  }}
}}
"""


@contextlib.contextmanager
def nginx_static(files: dict[str, bytes], workdir: Path) -> Iterator[Server]:
    """nginx with one worker serving each body at its URL path as a static file (``alias``)."""
    d = workdir / "nginx"
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    locations = []
    for i, (url, body) in enumerate(files.items()):
        (d / f"body{i}.json").write_bytes(body)
        locations.append(f"    location = {url} {{ default_type application/json; alias {d}/body{i}.json; }}")
    port = free_port()
    conf = d / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(d=d, port=port, locations="\n".join(locations)))
    server = Server(["nginx", "-e", str(d / "error.log"), "-p", str(d), "-c", str(conf)], port, d / "out.log")
    server.start()
    try:
        http = SyncHttp(port)
        for url, body in files.items():
            status, _, got = http.request("GET", url)
            if status != 200 or got != body:
                raise RuntimeError(f"nginx does not serve {url} as given: {status}")
        http.close()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def etcd(workdir: Path) -> Iterator[Server]:
    """A single-member etcd with its default durability (fsync per batch) on local disk."""
    client, peer, metrics = free_port(), free_port(), free_port()
    argv = [
        "etcd", "--name", "bench", "--data-dir", str(workdir / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{client}",
        "--advertise-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
        "--initial-cluster", f"bench=http://127.0.0.1:{peer}",
        "--listen-metrics-urls", f"http://127.0.0.1:{metrics}",
        "--log-level", "warn",
    ]  # fmt: skip
    server = Server(argv, client, workdir / "etcd.log").start()
    try:
        http = SyncHttp(client)
        deadline = time.monotonic() + 30
        while http.request("POST", "/v3/kv/range", b'{"key":"AA=="}')[0] != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("etcd is not serving")
            time.sleep(0.1)
        http.close()
        yield server
    finally:
        server.stop()


def client_argv(script: str, *args: str) -> list[str]:
    """Run ``bench/<script>`` as a load-generating child on the client core."""
    prefix = ["taskset", "-c", str(CLIENT_CORE)] if MULTICORE and shutil.which("taskset") else []
    return [*prefix, sys.executable, str(ROOT / "bench" / script), *args]


# --- wrk -------------------------------------------------------------------------------------


@dataclass(slots=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_wrk(out: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rps is None or total is None:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
        requests=int(total.group(1)),
        errors=errors + (int(non2xx.group(1)) if non2xx else 0),
    )


def run_wrk(url: str, conns: int, seconds: float, script: Path | None = None) -> WrkResult:
    """``wrk -t1 -cN -dS --latency`` on the client core; bounded by a hard timeout."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--latency", "--timeout", "5s"]
    if script is not None:
        argv += ["-s", str(script)]
    if MULTICORE and shutil.which("taskset"):
        argv = ["taskset", "-c", str(CLIENT_CORE), *argv]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(out.stdout)


# --- HTTP clients -------------------------------------------------------------------------------


class SyncHttp:
    """A keep-alive client for the orchestrating process (setup, triggers, probes)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):
            try:
                self._conn.request(method, path, body=body)
                resp = self._conn.getresponse()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, data: Any = None) -> Any:
        raw = data if isinstance(data, bytes) or data is None else json.dumps(data).encode()
        status, _, body = self.request(method, path, raw)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {body[:200]!r}")
        return json.loads(body) if body else None

    def close(self) -> None:
        self._conn.close()


class HttpConn:
    """One keep-alive HTTP/1.1 connection for asyncio load generators (no chunked bodies)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> HttpConn:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22)
        return self

    def send(self, method: str, path: str, body: bytes = b"") -> None:
        assert self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)

    async def receive(self) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        self.send(method, path, body)
        return await self.receive()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def run_loop(main: Any) -> Any:
    """Run a coroutine on uvloop when available."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


# --- statistics and reporting -------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return fmt(v, 2) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line() -> str:
    """The command that ran this script, as typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(ROOT)
    return shlex.join(["python", str(script), *sys.argv[1:]])


def append_results(title: str, table: str, ratio_line: str, notes: Sequence[str] = ()) -> None:
    """Print the table and append it, with the command and date, to docs/benchmarks.md."""
    print(table)
    for note in notes:
        print(note)
    print(ratio_line, flush=True)
    if os.environ.get("BENCH_NO_RECORD"):
        return
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"\n### {title} — {stamp}\n", f"`{command_line()}`\n", table + "\n"]
    parts += [f"- {note}" for note in notes]
    parts.append(f"\n`{ratio_line}`\n")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as out:
        out.write("\n".join(parts))
