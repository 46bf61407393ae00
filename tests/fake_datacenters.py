"""A plain fake of the RemoteDatacenters seam (the real one is tested end to end in
tests/e2e/test_query_failover.py): per datacenter, the node names its servers answer
with, or None for a datacenter none of whose servers answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class FakeDatacenters:
    """Answers per datacenter: a list of node names, or None for unreachable."""

    def __init__(self, nearest: list[str], answers: Mapping[str, list[str] | None]) -> None:
        self.nearest = nearest
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any], dict[str, str], str | None]] = []

    def local_datacenter(self) -> str:
        return "dc1"

    def datacenters_by_distance(self) -> list[str]:
        return list(self.nearest)

    async def execute_remote(
        self, dc: str, query: Mapping[str, Any], params: Mapping[str, str], token: str | None
    ) -> bytes | None:
        self.calls.append((dc, dict(query), dict(params), token))
        nodes = self.answers.get(dc)
        if nodes is None:
            return None
        rows = [{"Node": {"Node": n}, "Service": {"Service": query["Service"]["Service"]}} for n in nodes]
        body = {"Service": query["Service"]["Service"], "Nodes": rows, "DNS": {"TTL": ""}, "Datacenter": dc}
        return json.dumps(body).encode()
