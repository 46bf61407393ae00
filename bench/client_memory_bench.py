"""Client agent memory: a client agent with ``--local`` services of its own, joined to a
server whose catalog holds ``--nodes`` x ``--per-node`` other instances, in client RSS.

One ``-dev`` server is loaded through ``PUT /v1/txn`` as in ``memory_bench.py``; then a
client agent joins it, registers its own services (one TTL check each), and its VmRSS is
read once settled (two readings a second apart within 1%), with the same reading for a
client joined to an empty server beside it. A lean client holds only its own node and the
cluster's membership, so the two should be close; a client holding the whole catalog
grows with it.

The last line is ``ratio <loaded client RSS / empty-cluster client RSS>`` (target <= 1.1).

    python bench/client_memory_bench.py [--nodes 1000] [--per-node 10] [--local 20] [--watched 50]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
from pathlib import Path

from _common import agent, append_results, markdown_table, scratch_dir
from memory_bench import run_load, settled_rss

from waypost.testing import AgentProcess, wait_for

RATIO_TARGET = 1.1


def client_rss(server: AgentProcess, tmp: Path, name: str, local: int, watched: int) -> int:
    """RSS with ``local`` services of its own and ``watched`` services followed through it
    as an application does: a ``?cached`` read of each (kept fresh by the agent) and a
    blocking query parked on each."""
    args = ["-node", name, "-bind", "127.0.0.1", "-data-dir", str(tmp / name), "-log-level", "warn"]
    with agent([*args, "-retry-join", server.server_address]) as client:
        for i in range(local):
            svc = {"Name": f"local-{i}", "Port": 9000 + i, "Check": {"TTL": "10m"}}
            client.put("/v1/agent/service/register", svc)
        wait_for(lambda: len(server.get(f"/v1/catalog/node-services/{name}")["Services"]) == local, 30)
        with contextlib.ExitStack() as parked:
            for i in range(watched):
                path = f"/v1/health/service/svc-{i}"
                client.request("GET", f"{path}?cached")
                index = client.request("GET", path)[1]["X-Consul-Index"]
                conn = parked.enter_context(socket.create_connection(("127.0.0.1", client.http_port)))
                conn.sendall(f"GET {path}?index={index}&wait=5m HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            assert client.proc is not None
            return settled_rss(client.proc.pid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--per-node", type=int, default=10, help="instances per node (divides 100)")
    ap.add_argument("--local", type=int, default=20, help="the client agent's own services")
    ap.add_argument("--watched", type=int, default=50, help="services followed through the client")
    ap.add_argument("--max-seconds", type=float, default=300, help="bound on the load")
    opts = ap.parse_args()
    with scratch_dir("client-memory") as tmp:
        common = ["-log-level", "warn", "-hcl", "limits { http_max_conns_per_client = 0 }"]
        with agent(["-dev", "-node", "hub", *common], tmp / "hub.log") as server:
            empty = client_rss(server, tmp, "edge-empty", opts.local, opts.watched)
            run_load(server.http_port, "agent", opts)
            loaded = client_rss(server, tmp, "edge-loaded", opts.local, opts.watched)
    instances = opts.nodes * opts.per_node
    table = markdown_table(
        ["client agent", "RSS, empty cluster (MiB)", f"RSS, {instances:,} instances (MiB)"],
        [
            [
                f"{opts.local} local, {opts.watched} watched services",
                f"{empty / 1024:.0f}",
                f"{loaded / 1024:.0f}",
            ]
        ],
    )
    append_results("Client agent memory", table, f"ratio {loaded / empty / RATIO_TARGET:.2f}")


if __name__ == "__main__":
    main()
