"""The nodes and node pages in headless chromium against a real agent: address, health,
services and meta of each node with this agent's own marked, and a node's checks,
services, sessions and coordinates, all following changes without a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ui_kit import LIVE_SECONDS, UIPage
from waypost.testing import AgentProcess

RACK = {"Node": "rack-7", "Address": "10.7.0.1", "NodeMeta": {"rack": "r7", "zone": "eu-1"}}


def _rack_health(agent: AgentProcess, status: str) -> None:
    agent.put("/v1/catalog/register", {
        **RACK,
        "Check": {"CheckID": "power", "Name": "Power supply", "Status": status, "Output": f"psu {status}"},
    })  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def catalog(ui_agent: AgentProcess) -> None:
    _rack_health(ui_agent, "passing")
    ui_agent.put(
        "/v1/catalog/register", {**RACK, "Service": {"ID": "cache-1", "Service": "cache", "Port": 6379}}
    )
    ui_agent.put("/v1/agent/service/register", {"Name": "web", "Port": 8080, "Tags": ["v1"]})
    ui_agent.put("/v1/session/create", {"Name": "leader-lock", "TTL": "60s"})
    coord = {"Vec": [0.5, 0, 0, 0, 0, 0, 0, 0], "Error": 0.25, "Adjustment": 0.0, "Height": 1e-05}
    ui_agent.put("/v1/coordinate/update", {"Node": "ui-node", "Coord": coord})


def test_nodes_show_address_health_services_and_meta(ui: UIPage) -> None:
    page = ui.open("#/nodes")
    mine, rack = page.locator('.row[data-name="ui-node"]'), page.locator('.row[data-name="rack-7"]')
    expect(mine).to_have_class(re.compile(r"\bself\b"))
    expect(mine.locator(".self-mark")).to_have_text("this agent")
    expect(mine.locator(".node-services a")).to_have_text(["consul", "web"])
    expect(rack).not_to_have_class(re.compile(r"\bself\b"))
    expect(rack.get_by_text("10.7.0.1")).to_be_visible()
    expect(rack.locator(".status")).to_have_text("passing")
    expect(rack.locator(".node-services a")).to_have_text(["cache"])
    expect(rack.locator("dl.meta")).to_contain_text("rack")
    expect(rack.locator("dl.meta")).to_contain_text("eu-1")
    expect(page).to_have_title("Nodes (2) · waypost")
    page.get_by_label("Search nodes").fill("cache")
    expect(page.locator(".list-body .row:visible")).to_have_count(1)
    page.get_by_label("Search nodes").fill("")
    ui.screenshot("nodes")


def test_node_shows_checks_services_sessions_and_coordinates(ui: UIPage) -> None:
    page = ui.open("#/nodes")
    page.get_by_role("link", name="ui-node").click()
    expect(page.locator("h1")).to_contain_text("ui-node")
    expect(page.locator("h1 .self-mark")).to_be_visible()
    expect(page.locator("[data-check='serfHealth'] .status")).to_have_text("passing")
    services = page.locator("table.node-services")
    expect(services.get_by_role("link", name="web")).to_be_visible()
    expect(page.locator("table.sessions")).to_contain_text("leader-lock")
    expect(page.locator("table.sessions")).to_contain_text("1m0s")  # the TTL, as Consul writes it
    expect(page.locator("table.coordinates")).to_contain_text("0.5000")
    expect(page.locator("table.coordinates")).to_contain_text("0.2500")
    ui.screenshot("node")


def test_node_health_follows_its_checks_live(ui: UIPage, ui_agent: AgentProcess) -> None:
    page = ui.open("#/nodes")
    rack = page.locator('.row[data-name="rack-7"]')
    expect(rack.locator(".status")).to_have_text("passing")
    page.evaluate("window.sameDocument = true")
    _rack_health(ui_agent, "critical")
    expect(rack.locator(".status")).to_have_text("critical", timeout=LIVE_SECONDS * 1000)
    page.get_by_label("Status").select_option("critical")
    expect(page.locator(".list-body .row:visible")).to_have_count(1)
    rack.get_by_role("link", name="rack-7").click()
    expect(page.locator("[data-check='power'] .output")).to_have_text("psu critical")
    _rack_health(ui_agent, "warning")
    expect(page.locator("[data-check='power'] .status")).to_have_text("warning", timeout=LIVE_SECONDS * 1000)
    assert page.evaluate("window.sameDocument") is True
    _rack_health(ui_agent, "passing")


def test_unknown_node_says_so(ui: UIPage) -> None:
    page = ui.open("#/nodes/no-such-node")
    expect(page.get_by_text("No node named no-such-node.")).to_be_visible()
