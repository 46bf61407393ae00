"""The datacenter selector against two real federated datacenters: hidden while the agent
knows one, listed once the WAN has two, and choosing one makes every page read from it
(through ?dc=, kept across navigation)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ui_kit import UIPage
from waypost.testing import AgentProcess, wait_for

FAST_WAN = 'gossip_wan {\n probe_interval = "200ms"\n probe_timeout = "1s"\n suspicion_mult = 3\n}'


@pytest.fixture(scope="module")
def ui_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """dc1, the agent the browser talks to."""
    log = Path(tmp_path_factory.mktemp("dc1")) / "agent.log"
    with AgentProcess(["-dev", "-node", "a1", "-datacenter", "dc1", "-hcl", FAST_WAN], log_path=log) as agent:
        agent.request("PUT", "/v1/kv/where", b"in dc1")
        yield agent


@pytest.fixture(scope="module")
def dc2(ui_agent: AgentProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("dc2")) / "agent.log"
    args = ["-dev", "-node", "b1", "-datacenter", "dc2", "-hcl", FAST_WAN]
    args += ["-retry-join-wan", ui_agent.address, "-retry-interval-wan", "1s"]
    with AgentProcess(args, log_path=log) as agent:
        agent.request("PUT", "/v1/kv/where", b"in dc2")
        wait_for(lambda: "dc2" in ui_agent.get("/v1/catalog/datacenters"), 30)
        yield agent


def test_one_datacenter_shows_no_selector(ui: UIPage) -> None:
    page = ui.open("#/kv/where")
    expect(page.get_by_role("textbox", name="Value")).to_have_value("in dc1")
    expect(page.get_by_role("combobox", name="Datacenter")).to_be_hidden()


def test_choosing_a_datacenter_reads_from_it(ui: UIPage, dc2: AgentProcess) -> None:
    page = ui.open("#/kv/where")
    value = page.get_by_role("textbox", name="Value")
    expect(value).to_have_value("in dc1")
    selector = page.get_by_role("combobox", name="Datacenter")
    expect(selector).to_have_value("dc1")
    assert selector.locator("option").all_inner_texts() == ["dc1", "dc2"]
    selector.select_option("dc2")
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/kv/where?dc=dc2")
    expect(value).to_have_value("in dc2")
    ui.screenshot("dc-selector")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Key/Value").click()
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/kv/?dc=dc2")
    expect(page.get_by_role("combobox", name="Datacenter")).to_have_value("dc2")
    page.get_by_role("combobox", name="Datacenter").select_option("dc1")
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/kv/")
