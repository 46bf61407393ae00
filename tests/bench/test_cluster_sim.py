"""The cluster simulator at smoke size, so that it keeps working between benchmark runs.

It runs as the benchmark does (its own process, 3 etcd members, 3 server agents), with
50 simulated nodes for a few seconds and nothing recorded, every node also following by
blocking query and a few restarting; the test asserts what the run saw, never how fast.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from etcd_cluster import etcd_available

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available(), reason="etcd is not installed"),
]

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "cluster_sim.py"
SMOKE = ["--nodes", "50", "--seconds", "4", "--churn", "100", "--heartbeat", "1", "--ae", "2"]
SMOKE += ["--restarts", "100", "--blocking-share", "1"]


@pytest.mark.timeout(150)
def test_fifty_nodes_join_churn_and_every_subscriber_and_replica_sees_every_change() -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), *SMOKE, "--settle", "20", "--join-seconds", "60"],
        env={**os.environ, "BENCH_NO_RECORD": "1"},
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "| failed simulated requests | 0 |" in out, out
    for kind in ("stream", "blocking", "replica"):
        found = re.search(rf"\| {kind}: deliveries seen / expected \| (\d+) / (\d+) \|", out)
        assert found is not None, out
        seen, expected = int(found.group(1)), int(found.group(2))
        assert expected > 0, out
        assert seen == expected, out
    assert (
        "| pacing at 53 members: heartbeat / failure deadline / mean full sync s | 1.0 / 10.0 / 3 |" in out
    ), out
    assert re.search(r"\| replica: one node's start-up load of its scope, bytes / ms \| [1-9]", out), out
    assert re.search(r"\| servers: CPU cores in all / per 1,000 nodes \| \d", out), out
    assert re.search(r"\| etcd \(3 members\) proposals per s \| \d", out), out
