"""A blue/green cut-over as one /v1/txn: the old instance goes and the new one comes in a single
commit, so DNS, health reads and a blocked watcher never see both or neither.

Real agent, real ``dig``, py-consul for the blocking watch.
"""

from __future__ import annotations

import json
import shutil
import threading
from typing import Any

import consul
import pytest

from dig import dig
from waypost.testing import AgentProcess

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed")


def external(color: str, address: str) -> list[dict[str, Any]]:
    node = f"{color}-host"
    return [
        {"Node": {"Verb": "set", "Node": {"Node": node, "Address": address}}},
        {"Service": {"Verb": "set", "Node": node, "Service": {"ID": "shop", "Service": "shop", "Port": 80}}},
        {"Check": {"Verb": "set", "Check": {"Node": node, "CheckID": "up", "Name": "up", "Status": "passing",
                                           "ServiceID": "shop"}}},
    ]  # fmt: skip


def test_blue_green_cut_over_is_one_commit(dev_agent: AgentProcess) -> None:
    c = consul.Consul(host="127.0.0.1", port=dev_agent.http_port)
    c.txn.put(external("blue", "127.0.0.31"))
    assert dig(dev_agent, "shop.service.consul") == ["127.0.0.31"]
    index, entries = c.health.service("shop", passing=True)
    assert [e["Node"]["Node"] for e in entries] == ["blue-host"]

    seen: list[list[str]] = []

    def watch() -> None:
        _, woke = c.health.service("shop", passing=True, index=index, wait="20s")
        seen.append([e["Node"]["Node"] for e in woke])

    watcher = threading.Thread(target=watch)
    watcher.start()
    cut_over = [*external("green", "127.0.0.32"), {"Node": {"Verb": "delete", "Node": {"Node": "blue-host"}}}]
    results = c.txn.put(cut_over)["Results"]
    watcher.join(timeout=30)
    # One wake-up, and it already shows the whole cut-over.
    assert seen == [["green-host"]]
    assert {r[next(iter(r))]["ModifyIndex"] for r in results} == {int(c.health.service("shop")[0])}
    assert dig(dev_agent, "shop.service.consul") == ["127.0.0.32"]
    assert dig(dev_agent, "blue-host.node.consul") == []

    # A cut-over that fails its last step leaves green serving alone.
    failing = [
        *external("red", "127.0.0.33"),
        {"Node": {"Verb": "delete-cas", "Node": {"Node": "green-host"}}},
    ]
    status, _, _ = dev_agent.request("PUT", "/v1/txn", json.dumps(failing).encode())
    assert status == 409
    assert dig(dev_agent, "shop.service.consul") == ["127.0.0.32"]
    assert [e["Node"]["Node"] for e in c.health.service("shop")[1]] == ["green-host"]
