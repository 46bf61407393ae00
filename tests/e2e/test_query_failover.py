"""A prepared query failing over between two federated datacenters (each a dev server with
its own store), over HTTP and DNS: served from the local datacenter while it has passing
instances, from the other when every local instance fails, and from the local one again
once it recovers (over DNS from the very first lookup: the agent waits for the other
datacenter's answer rather than answer NXDOMAIN). ``Near = "_ip"`` sorts from the DNS
client's address (its EDNS client subnet). An unknown datacenter in ``Failover.Datacenters`` is skipped, and
``?dc=`` (and ``<name>.query.<dc>``) reach the other datacenter's own queries."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from waypost.testing import AgentProcess, wait_for

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed")

FAST_WAN = 'gossip_wan {\n probe_interval = "200ms"\n probe_timeout = "1s"\n suspicion_mult = 3\n}'


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, AgentProcess]]:
    base = Path(tmp_path_factory.mktemp("query-failover"))
    with AgentProcess(
        ["-dev", "-node", "a1", "-datacenter", "dc1", "-hcl", FAST_WAN], log_path=base / "dc1.log"
    ) as dc1:
        args = ["-dev", "-node", "b1", "-datacenter", "dc2", "-hcl", FAST_WAN]
        args += ["-retry-join-wan", dc1.address, "-retry-interval-wan", "1s"]
        with AgentProcess(args, log_path=base / "dc2.log") as dc2:
            wait_for(lambda: "dc2" in dc1.get("/v1/catalog/datacenters"), 30)
            dc1.put(
                "/v1/agent/service/register",
                {"Name": "web", "Address": "127.0.0.11", "Port": 80, "Check": {"TTL": "300s"}},
            )
            dc1.put("/v1/agent/check/pass/service:web")
            dc2.put("/v1/agent/service/register", {"Name": "web", "Address": "127.0.0.12", "Port": 80})
            yield dc1, dc2


def _create(agent: AgentProcess, body: dict[str, Any]) -> None:
    status, _, raw = agent.request("POST", "/v1/query", json.dumps(body).encode())
    assert status == 200, raw


def _served(agent: AgentProcess, name: str) -> tuple[str, int, list[str]]:
    answer = agent.get(f"/v1/query/{name}/execute")
    return answer["Datacenter"], answer["Failovers"], [n["Node"]["Node"] for n in answer["Nodes"]]


def _dig(agent: AgentProcess, name: str, qtype: str = "A", *show: str) -> list[str]:
    """``dig +short``, or with ``show`` (``+noall +answer``) the records with their TTLs."""
    out = subprocess.run(
        [
            "dig",
            "@127.0.0.1",
            "-p",
            str(agent.dns_port),
            *(show or ("+short",)),
            "+time=2",
            "+tries=1",
            name,
            qtype,
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return [line for line in out.stdout.splitlines() if line]


def test_nearest_n_fails_over_and_comes_back_over_http_and_dns(
    dcs: tuple[AgentProcess, AgentProcess],
) -> None:
    dc1, _ = dcs
    _create(
        dc1,
        {"Name": "web-fo", "Service": {"Service": "web", "Failover": {"NearestN": 1}}, "DNS": {"TTL": "17s"}},
    )
    assert _served(dc1, "web-fo") == ("dc1", 0, ["a1"])
    assert _dig(dc1, "web-fo.query.consul") == ["127.0.0.11"]
    assert _dig(dc1, "web-fo.query.consul", "A", "+noall", "+answer") == [
        "web-fo.query.consul.\t17\tIN\tA\t127.0.0.11"
    ]

    dc1.put("/v1/agent/check/fail/service:web")
    assert _served(dc1, "web-fo") == ("dc2", 1, ["b1"])
    assert _dig(dc1, "web-fo.query.consul") == ["127.0.0.12"]  # the very first lookup: no NXDOMAIN
    srv = _dig(dc1, "_web-fo._tcp.query.consul", "SRV")
    assert len(srv) == 1
    assert srv[0].startswith("1 1 80 ")

    dc1.put("/v1/agent/check/pass/service:web")
    assert _served(dc1, "web-fo") == ("dc1", 0, ["a1"])
    assert _dig(dc1, "web-fo.query.consul") == ["127.0.0.11"]


def test_an_unknown_datacenter_is_skipped_and_not_counted(dcs: tuple[AgentProcess, AgentProcess]) -> None:
    dc1, _ = dcs
    _create(
        dc1,
        {
            "Name": "web-listed",
            "Service": {"Service": "web", "Failover": {"Datacenters": ["nowhere", "dc2"]}},
        },
    )
    dc1.put("/v1/agent/check/fail/service:web")
    try:
        assert _served(dc1, "web-listed") == ("dc2", 1, ["b1"])
    finally:
        dc1.put("/v1/agent/check/pass/service:web")
    _create(
        dc1, {"Name": "web-nowhere", "Service": {"Service": "nope", "Failover": {"Datacenters": ["nowhere"]}}}
    )
    assert _served(dc1, "web-nowhere") == ("dc1", 0, [])


def test_dc_forwards_query_calls_to_the_other_datacenter(dcs: tuple[AgentProcess, AgentProcess]) -> None:
    dc1, dc2 = dcs
    body = json.dumps({"Name": "web-in-dc2", "Service": {"Service": "web"}}).encode()
    status, _, raw = dc1.request("POST", "/v1/query?dc=dc2", body)
    assert status == 200, raw
    qid = json.loads(raw)["ID"]
    assert [q["ID"] for q in dc2.get("/v1/query") if q["Name"] == "web-in-dc2"] == [qid]
    assert all(q["Name"] != "web-in-dc2" for q in dc1.get("/v1/query"))
    answer = dc1.get("/v1/query/web-in-dc2/execute?dc=dc2")
    assert (answer["Datacenter"], [n["Node"]["Node"] for n in answer["Nodes"]]) == ("dc2", ["b1"])
    assert _dig(dc1, "web-in-dc2.query.dc2.consul") == ["127.0.0.12"]


def test_a_query_failing_over_from_its_first_lookup_answers_over_udp_and_tcp(
    dcs: tuple[AgentProcess, AgentProcess],
) -> None:
    dc1, _ = dcs
    _create(dc1, {"Name": "away", "Service": {"Service": "web", "Failover": {"NearestN": 1}}})
    dc1.put("/v1/agent/check/fail/service:web")
    try:
        wait_for(lambda: _served(dc1, "away")[0] == "dc2", 10)
        assert _dig(dc1, "away.query.consul", "A", "+short", "+tcp") == ["127.0.0.12"]
        _create(dc1, {"Name": "away-udp", "Service": {"Service": "web", "Failover": {"NearestN": 1}}})
        assert _dig(dc1, "away-udp.query.consul") == ["127.0.0.12"]
    finally:
        dc1.put("/v1/agent/check/pass/service:web")


def test_near_ip_sorts_from_the_dns_clients_address(dcs: tuple[AgentProcess, AgentProcess]) -> None:
    dc1, _ = dcs
    for n in (1, 2, 3):
        dc1.put(
            "/v1/catalog/register",
            {
                "Node": f"ip-node{n}",
                "Address": f"10.20.0.{n}",
                "Service": {"ID": "near", "Service": "near", "Address": f"127.0.1.{n}", "Port": 80},
            },
        )
    _create(dc1, {"Name": "near-ip", "Service": {"Service": "near", "Near": "_ip"}})
    for n in (3, 1, 2, 3):
        answers = _dig(dc1, "near-ip.query.consul", "A", "+short", f"+subnet=10.20.0.{n}/32")
        assert answers[0] == f"127.0.1.{n}"
        assert sorted(answers) == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
