"""``/v1/waypost/virtual-ips`` and ``/v1/waypost/virtual-ip/:name`` against a real agent."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from waypost.testing import AgentProcess, wait_for

DECLARED = 'Service == shop and "v2" in Tags'


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    hcl = f"virtual_ips {{ services = {{ shop-v2 = {json.dumps(DECLARED)} }} }}"
    with AgentProcess(["-dev", "-node", "vip-node", "-hcl", hcl], log_path=log) as running:
        running.put("/v1/agent/service/register", {"Name": "shop", "Port": 7000, "Tags": ["v2"]})
        wait_for(lambda: running.get("/v1/waypost/virtual-ip/shop"), limit=10)
        yield running


def test_the_list_holds_every_service_and_declared_name_with_distinct_addresses(agent: AgentProcess) -> None:
    listed = agent.get("/v1/waypost/virtual-ips")
    by_name = {row["Name"]: row for row in listed}
    assert {"shop", "shop-v2", "consul"} <= set(by_name)
    assert by_name["shop-v2"]["Filter"] == DECLARED
    assert by_name["shop"]["Filter"] == ""
    addresses = [row["IP"] for row in listed]
    assert len(set(addresses)) == len(addresses)
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("127.240.0.0/12") for ip in addresses)
    assert set(listed[0]) == {"Name", "IP", "Filter", "CreateIndex", "ModifyIndex"}


def test_one_name_and_a_filtered_list(agent: AgentProcess) -> None:
    one = agent.get("/v1/waypost/virtual-ip/shop-v2")
    assert (one["Name"], one["Filter"]) == ("shop-v2", DECLARED)
    filtered = agent.get("/v1/waypost/virtual-ips?filter=" + "Filter%20is%20not%20empty")
    assert [row["Name"] for row in filtered] == ["shop-v2"]


def test_a_name_without_an_address_reads_null_and_a_bad_filter_is_a_400(agent: AgentProcess) -> None:
    status, headers, body = agent.request("GET", "/v1/waypost/virtual-ip/nothing-here")
    assert (status, body) == (200, b"null")
    assert int(headers["X-Consul-Index"]) > 0
    status, _, body = agent.request("GET", "/v1/waypost/virtual-ips?filter=Bogus%20==%20x")
    assert (status, body.decode()) == (
        400,
        'Failed to create boolean expression evaluator: Selector "Bogus" is not valid',
    )


def test_a_blocking_read_wakes_when_the_leader_allocates_the_name(agent: AgentProcess) -> None:
    _, headers, _ = agent.request("GET", "/v1/waypost/virtual-ip/cart")
    index = headers["X-Consul-Index"]
    with ThreadPoolExecutor(1) as pool:
        parked = pool.submit(agent.request, "GET", f"/v1/waypost/virtual-ip/cart?index={index}&wait=10s")
        agent.put("/v1/agent/service/register", {"Name": "cart", "Port": 7100})
        status, headers, body = parked.result(timeout=15)
    assert status == 200
    assert json.loads(body)["Name"] == "cart"
    assert int(headers["X-Consul-Index"]) > int(index)


def test_instances_are_the_services_own_or_those_the_declared_filter_selects(agent: AgentProcess) -> None:
    agent.put("/v1/agent/service/register", {"Name": "shop", "ID": "shop-old", "Port": 7001, "Tags": ["v1"]})
    agent.put("/v1/agent/service/register", {"Name": "other", "Port": 7002, "Tags": ["v2"]})
    try:
        rows = agent.get("/v1/waypost/virtual-ip-instances/shop")
        assert sorted(r["Service"]["ID"] for r in rows) == ["shop", "shop-old"]
        assert set(rows[0]) == {"Node", "Service", "Checks"}
        wait_for(lambda: agent.get("/v1/waypost/virtual-ip/other"), limit=10)
        rows = agent.get("/v1/waypost/virtual-ip-instances/shop-v2")
        assert [r["Service"]["ID"] for r in rows] == ["shop"]
        assert agent.get("/v1/waypost/virtual-ip-instances/nothing-here") == []
    finally:
        agent.put("/v1/agent/service/deregister/shop-old")
        agent.put("/v1/agent/service/deregister/other")


def test_instances_wake_a_blocking_read_when_a_matching_instance_appears(agent: AgentProcess) -> None:
    _, headers, _ = agent.request("GET", "/v1/waypost/virtual-ip-instances/shop-v2")
    index = headers["X-Consul-Index"]
    with ThreadPoolExecutor(1) as pool:
        parked = pool.submit(
            agent.request, "GET", f"/v1/waypost/virtual-ip-instances/shop-v2?index={index}&wait=10s"
        )
        agent.put(
            "/v1/agent/service/register", {"Name": "shop", "ID": "shop-new", "Port": 7003, "Tags": ["v2"]}
        )
        try:
            status, headers, body = parked.result(timeout=15)
        finally:
            agent.put("/v1/agent/service/deregister/shop-new")
    assert status == 200
    assert sorted(r["Service"]["ID"] for r in json.loads(body)) == ["shop", "shop-new"]
