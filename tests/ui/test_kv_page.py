"""The KV pages in a real browser against a real agent: folders and keys created, edited and
deleted through the UI, a concurrent write caught by CAS, odd names and 512 KiB values that
survive a round trip, markup in values shown as text, and the value views (YAML checked by a
real YAML parser)."""

from __future__ import annotations

import json
import random
import urllib.parse
from typing import Any

import yaml
from playwright.sync_api import Page, expect

from ui_kit import LIVE_SECONDS, UIPage
from waypost.testing import AgentProcess


def _url(key: str) -> str:
    return "/v1/kv/" + urllib.parse.quote(key, safe="/")


def _hash(key: str) -> str:
    return "#/kv/" + "/".join(urllib.parse.quote(part, safe="") for part in key.split("/"))


def _value(agent: AgentProcess, key: str) -> bytes | None:
    status, _, body = agent.request("GET", _url(key) + "?raw")
    return body if status == 200 else None


def _put(agent: AgentProcess, key: str, value: bytes) -> None:
    status, _, body = agent.request("PUT", _url(key), value)
    assert (status, body) == (200, b"true")


_INPUT = "t.dispatchEvent(new Event('input'))"
"""What typing fires: the page marks the value edited on it."""


def _editor(page: Page) -> Any:
    return page.get_by_role("textbox", name="Value", exact=True)


def _create(page: Page, name: str, value: str = "") -> None:
    page.get_by_role("button", name="Create").click()
    page.get_by_role("textbox", name="Key or folder").fill(name)
    if value:
        page.get_by_role("textbox", name="Value", exact=True).fill(value)
    page.get_by_role("button", name="Save").click()


def test_create_edit_conflict_and_recursive_delete(ui: UIPage) -> None:
    agent, page = ui.agent, ui.open("#/kv/")
    expect(page.get_by_role("heading", name="Key/Value")).to_be_visible()
    _create(page, "app/")
    expect(page).to_have_url(f"{agent.url}/ui/#/kv/app/")
    expect(page.get_by_text("This folder is empty.")).to_be_visible()
    assert _value(agent, "app/") == b""

    _create(page, "config", '{"port": 8080}')
    expect(page).to_have_url(f"{agent.url}/ui/#/kv/app/config")
    expect(_editor(page)).to_have_value('{"port": 8080}')
    assert _value(agent, "app/config") == b'{"port": 8080}'

    _editor(page).fill('{"port": 9090}')
    page.get_by_role("textbox", name="Flags").fill("42")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert _value(agent, "app/config") == b'{"port": 9090}'
    assert agent.get(_url("app/config"))[0]["Flags"] == 42
    expect(page.locator("dl.meta")).to_contain_text("42", timeout=LIVE_SECONDS * 1000)
    page.evaluate("window.scrollTo(0, 0)")
    ui.screenshot("kv-key")

    # Someone else writes while this tab has an unsaved edit: the save is refused (CAS).
    _editor(page).fill("mine")
    _put(agent, "app/config", b"theirs")
    expect(page.get_by_text("Someone else changed this key")).to_be_visible(timeout=LIVE_SECONDS * 1000)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Not saved: this key was changed by someone else")
    expect(_editor(page)).to_have_value("mine")
    assert _value(agent, "app/config") == b"theirs"
    page.get_by_role("button", name="Discard my edit and load theirs").click()
    expect(_editor(page)).to_have_value("theirs")

    _put(agent, "app/nested/deep/one", b"1")
    _put(agent, "app/two", b"2")
    page.get_by_role("link", name="app/").click()
    expect(page.get_by_role("link", name="nested/")).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text("two")
    ui.screenshot("kv")
    page.get_by_role("button", name="Delete folder").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("4 keys")
    dialog.get_by_role("button", name="Cancel").click()
    assert _value(agent, "app/two") == b"2"
    page.get_by_role("button", name="Delete folder").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete everything").click()
    expect(page).to_have_url(f"{agent.url}/ui/#/kv/")
    assert agent.request("GET", "/v1/kv/app/?recurse")[0] == 404


def test_a_listing_is_live(ui: UIPage) -> None:
    """An empty folder's 404 carries an index to block on: its first key shows as promptly as
    any later change (no back-off as after an error)."""
    page = ui.open("#/kv/live/")
    expect(page.get_by_text("This folder is empty")).to_be_visible()
    _put(ui.agent, "live/", b"")
    _put(ui.agent, "live/first", b"1")
    expect(page.get_by_role("link", name="first")).to_be_visible(timeout=LIVE_SECONDS * 1000)
    _put(ui.agent, "live/second", b"2")
    expect(page.get_by_role("link", name="second")).to_be_visible(timeout=LIVE_SECONDS * 1000)


def test_odd_names_and_a_512_kib_value_round_trip(ui: UIPage) -> None:
    agent = ui.agent
    odd = ["odd/with space/key name", "odd/ünïcødé ✓/ключ", "odd/percent%20and?query#hash", "odd/a//double"]
    for key in odd:
        _put(agent, key, key.encode())
    big_key = "odd/big"
    big = (("0123456789abcdef" * 64 + "\n") * 512)[: 512 * 1024].encode()
    _put(agent, big_key, big)

    page = ui.open(_hash("odd/"))
    for link in ["with space/", "ünïcødé ✓/", "percent%20and?query#hash", "a/", "big"]:
        expect(page.get_by_role("link", name=link, exact=True)).to_be_visible()
    for key in odd:
        page.goto(f"{agent.url}/ui/{_hash(key)}")
        expect(_editor(page)).to_have_value(key)
        _editor(page).fill(key + " (edited)")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
        assert _value(agent, key) == (key + " (edited)").encode()

    page.goto(f"{agent.url}/ui/{_hash(big_key)}")
    expect(page.locator("dl.meta")).to_contain_text(f"{len(big)} bytes")
    assert page.eval_on_selector("textarea.kv-value", "t => t.value.length") == len(big)
    assert page.locator("textarea").count() == 1
    page.eval_on_selector(
        "textarea.kv-value", "t => { t.value = 'X' + t.value.slice(1); t.dispatchEvent(new Event('input')); }"
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert _value(agent, big_key) == b"X" + big[1:]

    page.goto(f"{agent.url}/ui/{_hash(big_key)}")
    expect(page.locator("dl.meta")).to_contain_text(f"{len(big)} bytes")
    page.eval_on_selector(
        "textarea.kv-value", "t => { t.value += 'more'; t.dispatchEvent(new Event('input')); }"
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("too large, max size: 524288 bytes")


def test_markup_in_keys_and_values_is_shown_as_text(ui: UIPage) -> None:
    script = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"
    name = "<b onmouseover='window.__pwned = 3'>bold"
    _put(ui.agent, f"xss/{name}", script.encode())
    page = ui.open(_hash("xss/"))
    page.get_by_role("link", name=name).click()
    expect(_editor(page)).to_have_value(script)
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script, main b").count() == 0


def test_value_views_json_yaml_base64_hex(ui: UIPage) -> None:
    doc = {"name": "web", "tags": ["a", "b c"], "nested": {"on": "yes", "n": None, "port": 8080}}
    _put(ui.agent, "views/doc", json.dumps(doc).encode())
    page = ui.open(_hash("views/doc"))
    expect(_editor(page)).to_have_value(json.dumps(doc))
    page.get_by_label("YAML").check()
    assert yaml.safe_load(_editor(page).input_value()) == doc
    expect(_editor(page)).to_have_attribute("readonly", "")
    page.get_by_label("JSON").check()
    assert json.loads(_editor(page).input_value()) == doc
    page.get_by_label("Base64").check()
    assert _editor(page).input_value() == __import__("base64").b64encode(json.dumps(doc).encode()).decode()

    binary = bytes(range(256))
    _put(ui.agent, "views/binary", binary)
    page.goto(f"{ui.agent.url}/ui/{_hash('views/binary')}")
    expect(page.get_by_label("Base64")).to_be_checked()
    expect(page.get_by_label("Text")).to_be_disabled()
    expect(page.get_by_label("YAML")).to_be_disabled()
    page.get_by_label("Hex").check()
    assert _editor(page).input_value().startswith("00000000  00 01 02 03")
    # Editing as base64 writes those bytes, not their text.
    page.get_by_label("Base64").check()
    _editor(page).fill("AAEC/w==")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert _value(ui.agent, "views/binary") == b"\x00\x01\x02\xff"
    _editor(page).fill("not base64!")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Not valid base64")


_WORDS = ["", " ", "a", "yes", "No", "null", "~", "1.5", "0x1F", "-x", "a: b", "# c", "ü ✓", "x\ny", "t\tab",
          "trail\n", "two\n\n", " lead", "@at", "'q'", '"dq"', "[x]", "{y}", "key_1", "/path/to", "%",
          "2001-01-01", "x\n lead", "line\r\n", "end "]  # fmt: skip
"""Strings a YAML writer gets wrong when it is careless: reserved words, indicators, blanks."""


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    words = _WORDS
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 7, 3.25, 1e21, -0.5, 2**40])
    if kind in (3, 4, 5):
        return rng.choice(words)
    if kind in (6, 7):
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(words): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_yaml_view_reads_back_as_the_same_json(ui: UIPage) -> None:
    """Five hundred generated documents, rendered by the page's own module, parsed by PyYAML."""
    page = ui.open("#/kv/")
    rng = random.Random(7)
    docs = [_random_json(rng) for _ in range(500)]
    rendered = page.evaluate(
        "async (docs) => (await import('./js/kv_format.js')).toYaml && "
        "docs.map((await import('./js/kv_format.js')).toYaml)",
        docs,
    )
    for doc, text in zip(docs, rendered, strict=True):
        assert yaml.safe_load(text) == doc, text


def test_bad_input_gets_a_clear_message(ui: UIPage) -> None:
    page = ui.open("#/kv/")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("textbox", name="Key or folder").fill("   ")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_have_text("Enter a key name")
    page.get_by_role("textbox", name="Key or folder").fill("flagged")
    page.get_by_role("textbox", name="Flags").fill("-1")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Flags must be a whole number")
    _put(ui.agent, "taken", b"x")
    page.get_by_role("textbox", name="Flags").fill("0")
    page.get_by_role("textbox", name="Key or folder").fill("taken")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("taken already exists")
    assert _value(ui.agent, "taken") == b"x"
    page.goto(f"{ui.agent.url}/ui/#/kv/no/such/key")
    expect(page.get_by_text("There is no key no/such/key.")).to_be_visible()


def test_phone_sized_screen(ui: UIPage) -> None:
    _put(ui.agent, "phone/settings", b'{"theme": "dark"}')
    page = ui.open(_hash("phone/settings"))
    page.set_viewport_size({"width": 390, "height": 844})
    expect(_editor(page)).to_have_value('{"theme": "dark"}')
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    ui.screenshot("kv-phone")


def test_keyboard_only(ui: UIPage) -> None:
    page = ui.open("#/kv/")
    page.get_by_role("button", name="Create").focus()
    page.keyboard.press("Enter")
    name = page.get_by_role("textbox", name="Key or folder")
    expect(name).to_be_focused()
    page.keyboard.type("kb/typed key")
    page.keyboard.press("Tab")
    expect(_editor(page)).to_be_focused()
    page.keyboard.type("typed value")
    name.press("Enter")
    expect(page).to_have_url(f"{ui.agent.url}/ui/{_hash('kb/typed key')}")
    assert _value(ui.agent, "kb/typed key") == b"typed value"

    page.get_by_role("button", name="Delete").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert _value(ui.agent, "kb/typed key") == b"typed value"
    page.get_by_role("button", name="Delete").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Delete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{ui.agent.url}/ui/#/kv/kb/")
    assert _value(ui.agent, "kb/typed key") is None
