"""ACL cost on the hot reads: health reads and DNS with ACLs on against ACLs off.

Two dev agents, one with ``acl { enabled, default_policy = "deny" }``, each with ``web``
at 10 passing instances. With ACLs on, reads carry a token whose policy reads every
service and node (so the answers are the same as with ACLs off, but every request is
resolved, checked and filtered), and DNS answers through a DNS token with the same policy.
wrk runs ``/v1/health/service/web?passing`` (64 connections, the token in
X-Consul-Token for both agents) and dnsperf ``web.service.consul A``; the agents
alternate run by run. The last line is ``ratio <on/off>``, the lower of the two medians'
ratios. Target: >= 0.9.

    python bench/acl_bench.py [--seconds 5] [--runs 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import (
    SyncHttp,
    agent,
    append_results,
    fmt,
    markdown_table,
    median,
    require,
    run_wrk,
    scratch_dir,
)
from dns_bench import dnsperf
from http_bench import register

ROOT_TOKEN = "0b1e3c5a-7d9f-4e21-8a63-c4f5e6d7a8b9"
READ_TOKEN = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
ACL_CONFIG = f"""
acl {{
  enabled = true
  default_policy = "deny"
  tokens {{
    initial_management = "{ROOT_TOKEN}"
    dns = "{READ_TOKEN}"
  }}
}}
"""
PATH = "/v1/health/service/web?passing"


def grant_reads(http: TokenHttp) -> None:
    """The read token: every service and node, through the API as an operator would."""
    rules = 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }'
    http.json("PUT", "/v1/acl/policy", {"Name": "read-all", "Rules": rules})
    http.json("PUT", "/v1/acl/token", {"SecretID": READ_TOKEN, "Policies": [{"Name": "read-all"}]})


class TokenHttp(SyncHttp):
    """Setup writes on the ACL agent carry the management token as ``?token=``."""

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        sep = "&" if "?" in path else "?"
        return super().request(method, f"{path}{sep}token={ROOT_TOKEN}", body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--instances", type=int, default=10)
    opts = ap.parse_args()
    require("wrk", "dnsperf")
    with scratch_dir("acl") as tmp:
        config = tmp / "acl.hcl"
        config.write_text(ACL_CONFIG)
        script = tmp / "token.lua"
        script.write_text(f'wrk.headers["X-Consul-Token"] = "{READ_TOKEN}"\n')
        queries = tmp / "a.txt"
        queries.write_text("web.service.consul. A\n")
        args = ["-dev", "-log-level", "warn"]
        with (
            agent(args, tmp / "off.log") as off,
            agent([*args, "-config-file", str(config)], tmp / "on.log") as on,
        ):
            register(SyncHttp(off.http_port), 0, opts.instances)
            register(TokenHttp(on.http_port), 0, opts.instances)
            grant_reads(TokenHttp(on.http_port))
            status, _, body = SyncHttp(on.http_port).request("GET", f"{PATH}&token={READ_TOKEN}")
            assert status == 200, body[:200]
            assert body.count(b'"Node":{') == opts.instances, "the read token must see every instance"
            rows, ratios = _measure(
                opts, off.http_port, on.http_port, off.dns_port, on.dns_port, script, queries
            )
    append_results(
        "ACLs on vs off (health reads, DNS)",
        markdown_table(["read", "ACLs off", "ACLs on", "on/off"], rows),
        f"ratio {min(ratios):.2f} (on/off, the lower of HTTP and DNS; target >= 0.9)",
        [
            f"{opts.instances} instances; wrk -t1 -c64 -d{opts.seconds:g}s, dnsperf -c10 -q100, "
            f"{opts.runs} runs per agent, interleaved; medians",
        ],
    )


def _measure(
    opts: argparse.Namespace,
    off_http: int,
    on_http: int,
    off_dns: int,
    on_dns: int,
    script: Path,
    queries: Path,
) -> tuple[list[list[object]], list[float]]:
    got: dict[str, list[float]] = {"http off": [], "http on": [], "dns off": [], "dns on": []}
    for _ in range(opts.runs):  # A/B/A/B
        for name, port in (("off", off_http), ("on", on_http)):
            got[f"http {name}"].append(
                run_wrk(f"http://127.0.0.1:{port}{PATH}", 64, opts.seconds, script).rps
            )
        for name, port in (("off", off_dns), ("on", on_dns)):
            got[f"dns {name}"].append(dnsperf(port, queries, int(opts.seconds)))
    rows: list[list[object]] = []
    ratios = []
    for kind, label in (("http", f"GET {PATH} (rps)"), ("dns", "web.service.consul A (qps)")):
        off, on = median(got[f"{kind} off"]), median(got[f"{kind} on"])
        ratios.append(on / off)
        rows.append([label, fmt(off), fmt(on), f"{on / off:.2f}"])
    return rows, ratios


if __name__ == "__main__":
    main()
