"""The login, tokens and policies pages in a real browser against a real agent with ACLs on
and default deny: without a token the pages say so and offer to log in; a bad token is
refused; with a management token tokens and policies are listed live, created, edited and
deleted, and the agent's own rules (builtin records, bad names and rules) show as messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from acl_kit import ROOT, Caller, start_acl_agent
from ui_kit import LIVE_SECONDS, UIPage
from waypost.testing import AgentProcess


@pytest.fixture(scope="module")
def ui_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """This module's agent: ACLs on, default deny, ``ROOT`` the initial management token."""
    with start_acl_agent(tmp_path_factory.mktemp("acl-ui")) as agent:
        yield agent


def _login(page: Page, secret: str) -> None:
    page.get_by_label("Token").fill(secret)
    page.get_by_role("button", name="Log in", exact=True).click()


def test_without_a_token_the_pages_say_so_and_offer_login(ui: UIPage) -> None:
    for where in ["#/acl/policies", "#/kv/app/config", "#/acl/tokens"]:
        page = ui.open(where)
        alert = page.locator("main").get_by_role("alert")
        expect(alert).to_contain_text("Permission denied")
        expect(alert.get_by_role("link", name="Log in with a token")).to_be_visible()
    ui.screenshot("acl-denied")
    # A list is filtered by the token rather than refused, as in Consul.
    for where, empty in [("#/kv/", "This folder is empty"), ("#/sessions", "There are no sessions")]:
        page = ui.open(where)
        expect(page.get_by_text(f"{empty}, or hidden from you")).to_be_visible()
        expect(page.get_by_role("link", name="Log in with a token")).to_be_visible()


def test_login_refuses_a_bad_token_and_returns_to_the_page(ui: UIPage) -> None:
    page = ui.open("#/acl/policies")
    page.get_by_role("link", name="Log in with a token").click()
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/login")
    expect(page.get_by_text("You are not logged in")).to_be_visible()
    page.get_by_role("button", name="Log in", exact=True).click()
    _login(page, "   ")
    expect(page.get_by_role("alert")).to_have_text("Enter a token")
    _login(page, "not-a-token")
    expect(page.get_by_role("alert")).to_have_text(
        "The token entered does not exist. Please enter a valid token to log in."
    )
    assert page.evaluate("sessionStorage.getItem('waypost.token')") is None
    ui.screenshot("login")
    header = page.get_by_role("banner")
    expect(header.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    _login(page, ROOT)
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/acl/policies")
    expect(header.get_by_role("link", name="Logged in", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="global-management")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('waypost.token')") == ROOT
    page.goto(f"{ui.agent.url}/ui/#/login")
    expect(page.get_by_text("You are logged in with")).to_contain_text("Initial Management Token")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are not logged in")).to_be_visible()
    expect(header.get_by_role("link", name="Log in", exact=True)).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('waypost.token')") is None


def test_policies_and_tokens_are_listed_created_and_deleted(ui: UIPage) -> None:
    page = ui.open("#/login")
    _login(page, ROOT)
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/acl/tokens")
    page.goto(f"{ui.agent.url}/ui/#/acl/policies")
    management = page.locator('tr[data-id="00000000-0000-0000-0000-000000000001"]')
    expect(management).to_be_visible()
    expect(management.get_by_role("button")).to_have_count(0)

    page.get_by_role("button", name="Create").click()
    form = page.get_by_role("form", name="Create a policy")
    form.get_by_role("textbox", name="Name").fill("bad name")
    form.get_by_role("button", name="Create policy").click()
    expect(form.get_by_role("alert")).to_contain_text("Invalid Policy: invalid Name")
    form.get_by_role("textbox", name="Name").fill("kv-reader")
    form.get_by_role("textbox", name="Rules").fill('key_prefix "app/" { polcy = "read" }')
    form.get_by_role("button", name="Create policy").click()
    expect(form.get_by_role("alert")).to_contain_text("Invalid Policy: failed to parse rules")
    form.get_by_role("textbox", name="Rules").fill('key_prefix "app/" { policy = "read" }')
    form.get_by_role("textbox", name="Description").fill("reads app/")
    form.get_by_role("button", name="Create policy").click()
    expect(form.get_by_role("status")).to_contain_text("Created policy kv-reader")
    row = page.locator("tr", has=page.get_by_role("link", name="kv-reader", exact=True))
    expect(row).to_contain_text("reads app/", timeout=LIVE_SECONDS * 1000)
    ui.screenshot("acl-policies")

    page.goto(f"{ui.agent.url}/ui/#/acl/tokens")
    expect(page.locator("tr", has_text="your token")).to_contain_text("Initial Management Token")
    anonymous = page.locator('tr[data-id="00000000-0000-0000-0000-000000000002"]')
    expect(anonymous.get_by_role("button")).to_have_count(0)
    expect(page.locator("tr", has_text="your token").get_by_role("button")).to_have_count(0)
    page.get_by_role("button", name="Create").click()
    form = page.get_by_role("form", name="Create a token")
    form.get_by_role("textbox", name="Description").fill("ci deploy")
    form.get_by_role("checkbox", name="kv-reader").check()
    form.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("status").filter(has_text="Created token")).to_be_visible()
    created = Caller(ui.agent).ok("GET", "/v1/acl/token/self", token=page.locator("code.secret").inner_text())
    assert (created["Description"], [p["Name"] for p in created["Policies"]]) == ("ci deploy", ["kv-reader"])
    row = page.locator(f'tr[data-id="{created["AccessorID"]}"]')
    expect(row.get_by_role("link", name="kv-reader")).to_be_visible(timeout=LIVE_SECONDS * 1000)
    ui.screenshot("acl-tokens")

    row.get_by_role("button", name="Delete token ci deploy").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete token").click()
    expect(row).to_have_count(0, timeout=LIVE_SECONDS * 1000)
    assert Caller(ui.agent)("GET", f"/v1/acl/token/{created['AccessorID']}", token=ROOT)[:2] == (
        403,
        "ACL not found",
    )

    page.goto(f"{ui.agent.url}/ui/#/acl/policies")
    page.get_by_role("button", name="Delete policy kv-reader").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete policy").click()
    expect(page.get_by_role("link", name="kv-reader", exact=True)).to_have_count(
        0, timeout=LIVE_SECONDS * 1000
    )


def test_policy_and_token_details_edit_live(ui: UIPage) -> None:
    call = Caller(ui.agent)
    read_rules = 'service_prefix "" { policy = "read" }'
    write_rules = read_rules.replace("read", "write")
    policy = call.ok("PUT", "/v1/acl/policy", {"Name": "svc-reader", "Rules": read_rules})
    page = ui.open("#/login")
    _login(page, ROOT)
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/acl/tokens")
    page.goto(f"{ui.agent.url}/ui/#/acl/policies/{policy['ID']}")
    expect(page.get_by_role("heading", name="svc-reader")).to_be_visible()
    expect(page.get_by_text("No token links this policy.")).to_be_visible()
    token = call.ok(
        "PUT", "/v1/acl/token", {"Description": "svc watcher", "Policies": [{"ID": policy["ID"]}]}
    )
    expect(page.get_by_role("link", name="svc watcher")).to_be_visible(timeout=LIVE_SECONDS * 1000)
    rules = page.get_by_role("textbox", name="Rules")
    expect(rules).to_have_value(read_rules)
    rules.fill(write_rules)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert call.ok("GET", f"/v1/acl/policy/{policy['ID']}")["Rules"] == write_rules
    ui.screenshot("acl-policy")

    page.get_by_role("link", name="svc watcher").click()
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/acl/tokens/{token['AccessorID']}")
    expect(page.locator("dl.meta")).to_contain_text("svc-reader")
    ui.screenshot("acl-token")
    page.get_by_role("button", name="Show secret").click()
    expect(page.locator("code.secret")).to_have_text(token["SecretID"])
    page.get_by_role("button", name="Hide secret").click()
    expect(page.locator("code.secret")).not_to_have_text(token["SecretID"])
    page.get_by_role("textbox", name="Description").fill("svc watcher (renamed)")
    page.get_by_role("checkbox", name="svc-reader").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    read = call.ok("GET", f"/v1/acl/token/{token['AccessorID']}")
    assert (read["Description"], read.get("Policies")) == ("svc watcher (renamed)", None)
    expect(page.locator("dl.meta")).to_contain_text("svc watcher (renamed)", timeout=LIVE_SECONDS * 1000)
    call.ok("DELETE", f"/v1/acl/token/{token['AccessorID']}")
    expect(page.get_by_text("This token has been deleted.")).to_be_visible(timeout=LIVE_SECONDS * 1000)


def test_with_acls_off_the_pages_say_so(browser: Browser, tmp_path: Path) -> None:
    with AgentProcess(["-dev"], log_path=tmp_path / "agent.log") as agent:
        context = browser.new_context()
        try:
            tab = UIPage(context.new_page(), agent)
            page = tab.open("#/acl/tokens")
            expect(page.get_by_role("alert")).to_contain_text("ACLs are disabled on this agent")
            page.goto(f"{agent.url}/ui/#/login")
            _login(page, ROOT)
            expect(page.get_by_role("alert")).to_contain_text(
                "ACLs are disabled on this agent: no token is needed."
            )
            assert tab.errors == []
        finally:
            context.close()


def test_tokens_and_policies_on_a_phone(ui: UIPage) -> None:
    page = ui.open("#/login")
    _login(page, ROOT)
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/acl/tokens")
    page.set_viewport_size({"width": 390, "height": 844})
    shown = {
        "#/acl/tokens": "Initial Management Token",
        "#/acl/policies": "global-management",
        "#/login": "Log out",
    }
    for where, text in shown.items():
        page.goto(f"{ui.agent.url}/ui/{where}")
        expect(page.locator("main").get_by_text(text).first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, where
