"""Template daemon: re-render time after quiescence and blocking queries per dependency.

A dev agent (its own process, on the server core) gets S services of I instances each
(default 10 x 100 = 1,000 instances) and one KV key. ``waypost template``'s runner runs
in this process with T templates (default 100): template t renders an haproxy backend
from ``service "svc<t mod S>"`` plus the shared key, so the templates share S + 1
distinct dependencies. Reported:

* watches: the agent's ``consul.blocking_queries.waiting`` gauge once everything
  rendered (must equal the distinct dependencies, not the templates);
* re-render: for R rounds, one instance's port changes; the runner's pass (rendering the
  templates that read the changed service and writing their files) is timed from the
  moment the change reached the brain, i.e. after quiescence;
* the first full render of all templates.

The last line is ``ratio <median re-render ms / 100 ms>`` (target <= 1).

    python bench/template_bench.py [--templates 100] [--services 10] [--instances 100] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _common import AgentProcess, SyncHttp, agent, append_results, fmt, markdown_table

from waypost.client import ApiClient
from waypost.template.config import Config, TemplateSpec
from waypost.template.runner import Runner

TEMPLATE = """backend b{t}{{{{ range service "svc{s}" }}}}
    server {{{{ .Node }}}}-{{{{ .ID }}}} {{{{ .Address }}}}:{{{{ .Port }}}} check{{{{ end }}}}
    maxconn {{{{ keyOrDefault "bench/maxconn" "100" }}}}
"""


def load(http: SyncHttp, services: int, instances: int) -> None:
    for s in range(services):
        for i in range(instances):
            body = {
                "Node": f"node{i}",
                "Address": f"10.0.{i // 250}.{i % 250 + 1}",
                "Service": {"ID": f"svc{s}-{i}", "Service": f"svc{s}", "Port": 8000 + i},
            }
            http.json("PUT", "/v1/catalog/register", body)
    http.json("PUT", "/v1/kv/bench/maxconn", b"200")


def waiting_queries(http: SyncHttp) -> int:
    metrics = http.json("GET", "/v1/agent/metrics")
    for gauge in metrics["Gauges"]:
        if gauge["Name"] == "consul.blocking_queries.waiting":
            return int(gauge["Value"])
    raise RuntimeError("no consul.blocking_queries.waiting gauge")


async def until(predicate: object, limit: float = 60.0) -> float:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return time.monotonic()
        await asyncio.sleep(0.005)
    raise TimeoutError(f"not reached within {limit}s")


async def measure(dev: AgentProcess, folder: Path, args: argparse.Namespace) -> dict[str, object]:
    specs = [
        TemplateSpec(
            contents=TEMPLATE.format(t=t, s=t % args.services), destination=str(folder / f"t{t}.cfg")
        )
        for t in range(args.templates)
    ]
    http = SyncHttp(dev.http_port)
    async with ApiClient(dev.address) as api:
        runner = Runner(Config(templates=specs), api)
        started = time.monotonic()
        task = asyncio.create_task(runner.run())
        await until(lambda: all(Path(s.destination).exists() for s in specs))
        first = time.monotonic() - started
        await asyncio.sleep(0.5)
        watches = await asyncio.to_thread(waiting_queries, http)
        distinct = runner.watcher.active
        samples = []
        target = folder / "t0.cfg"
        for r in range(args.rounds):
            port = 20000 + r
            passes = runner.passes
            body = {
                "Node": "node5",
                "Address": "10.0.0.6",
                "Service": {"ID": "svc0-5", "Service": "svc0", "Port": port},
            }
            await asyncio.to_thread(http.json, "PUT", "/v1/catalog/register", body)
            await until(lambda port=port: f":{port} check" in target.read_text())
            await until(lambda passes=passes: runner.passes > passes)
            samples.append(runner.last_pass_seconds * 1000)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {"first": first, "watches": watches, "distinct": distinct, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--templates", type=int, default=100)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="template-bench-") as tmp, agent(["-dev"]) as dev:
        load(SyncHttp(dev.http_port), args.services, args.instances)
        result = asyncio.run(measure(dev, Path(tmp), args))
    samples = sorted(result["samples"])  # type: ignore[type-var]
    med = statistics.median(samples)
    rows = [
        ["templates / instances", f"{args.templates} / {args.services * args.instances}"],
        ["distinct dependencies (runner)", result["distinct"]],
        ["blocking queries open at the agent", result["watches"]],
        ["first render of all templates", f"{fmt(float(result['first']) * 1000, 0)} ms"],  # type: ignore[arg-type]
        ["re-render after a change, median / max", f"{fmt(med, 1)} / {fmt(samples[-1], 1)} ms"],
    ]
    append_results(
        "Template daemon re-render and watches",
        markdown_table(["measure", "value"], rows),
        f"ratio {med / 100:.2f}",
        [
            f"{args.templates // args.services} of the templates read the changed service, "
            "the rest are not re-rendered"
        ],
    )


if __name__ == "__main__":
    main()
