"""The services page at scale, in headless chromium: 5,000 services rendered, then kept
current while 100 check changes a second arrive. It prints what it measured (the numbers
go to docs/benchmarks.md) and asserts only what a person would see, never a duration:

    python3 -m pytest -q -s -p no:cacheprovider tests/ui/test_speed.py
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from ui_kit import UIPage
from waypost.testing import AgentProcess

SERVICES = 5000
NODES = 50
RATE = 100
"""Check changes a second while the page is watched."""
CHANGES = 400
TXN_OPS = 64
"""Operations a transaction; each touches more than one record, and Consul caps those at 128."""


def _status(i: int) -> str:
    return "critical" if i % 10 == 0 else "warning" if i % 7 == 0 else "passing"


def _ops(i: int, status: str) -> list[dict[str, Any]]:
    node, name = f"bulk-{i % NODES:02d}", f"svc-{i:04d}"
    check = {"Node": node, "CheckID": f"{name}-check", "Name": "probe", "ServiceID": name, "Status": status}
    service = {"ID": name, "Service": name, "Port": 1000 + i, "Tags": [f"t{i % 13}"]}
    return [
        {"Service": {"Verb": "set", "Node": node, "Service": service}},
        {"Check": {"Verb": "set", "Check": check}},
    ]


@pytest.fixture(scope="module")
def ui_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """A dev agent holding 5,000 services on 50 nodes, each with one check."""
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    with AgentProcess(["-dev", "-node", "ui-node"], log_path=log) as agent:
        ops = [
            {"Node": {"Verb": "set", "Node": {"Node": f"bulk-{n:02d}", "Address": f"10.9.0.{n}"}}}
            for n in range(NODES)
        ]
        for i in range(SERVICES):
            ops.extend(_ops(i, _status(i)))
        for start in range(0, len(ops), TXN_OPS):
            agent.put("/v1/txn", ops[start : start + TXN_OPS])
        yield agent


def _changer(agent: AgentProcess, stop: threading.Event, done: list[int]) -> None:
    """Flips checks between critical and passing at RATE a second, CHANGES at most."""
    conn = http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=10)
    start = time.monotonic()
    for n in range(CHANGES):
        if stop.is_set():
            break
        i = (n * 37) % SERVICES
        status = "critical" if n % 2 == 0 else "passing"
        conn.request("PUT", "/v1/txn", json.dumps(_ops(i, status)[1:]))
        conn.getresponse().read()
        done.append(i)
        delay = start + (n + 1) / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    conn.close()


RENDER_PROBE = """
new MutationObserver((_, observer) => {
  if (document.querySelector(".summary")?.textContent !== "%d services") return;
  if (!document.querySelector(".list-body .row")) return;
  observer.disconnect();
  const note = () => (document.documentElement.dataset.rendered = performance.now());
  requestAnimationFrame(() => setTimeout(note));
}).observe(document, { childList: true, subtree: true, characterData: true });
"""
"""Notes when the list is in and its first screenful painted, in ms since navigation started."""

LAG_PROBE = """() => {
  window.lags = [];
  let last = performance.now();
  window.lagTimer = setInterval(() => {
    const now = performance.now();
    window.lags.push(now - last - 50);
    last = now;
  }, 50);
}"""


def test_five_thousand_services_render_and_stay_responsive(browser: Browser, ui_agent: AgentProcess) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = UIPage(context.new_page(), ui_agent)
    page = tab.page
    try:
        page.add_init_script(RENDER_PROBE % (SERVICES + 1))
        tab.open("#/services")
        expect(page.locator("html")).to_have_attribute("data-rendered", re.compile(r"\d"), timeout=30_000)
        rendered = float(page.evaluate("document.documentElement.dataset.rendered"))
        page.keyboard.press("End")  # rows further down are built as they come on screen
        last_row = page.locator('.row[data-name="svc-4999"]')
        expect(last_row).to_be_attached()
        last_row.scroll_into_view_if_needed()
        expect(last_row).to_be_in_viewport()
        page.keyboard.press("Home")
        expect(page.locator(".summary")).to_have_text(f"{SERVICES + 1} services")
        expect(page).to_have_title(f"Services ({SERVICES + 1}) · waypost")

        page.evaluate(LAG_PROBE)
        stop, done = threading.Event(), []
        writer = threading.Thread(target=_changer, args=(ui_agent, stop, done))
        started = time.monotonic()
        writer.start()
        typed = []
        try:
            search = page.get_by_label("Search services")
            for term in ("svc-00", "svc-1", "t3", ""):
                t0 = time.monotonic()
                search.fill(term)
                page.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
                typed.append(time.monotonic() - t0)
                page.wait_for_timeout(300)
        finally:
            writer.join(timeout=CHANGES / RATE + 30)
            stop.set()
        elapsed = time.monotonic() - started
        last = done[-1]
        final = "critical" if (len(done) - 1) % 2 == 0 else "passing"
        page.get_by_label("Search services").fill(f"svc-{last:04d}")
        expect(page.locator(f'.row[data-name="svc-{last:04d}"]')).to_have_attribute("data-status", final)
        lags = sorted(page.evaluate("window.lags"))
        print(
            f"\n5,000 services: rendered {rendered:.0f} ms after navigation start;"
            f" {len(done)} check changes in {elapsed:.1f} s ({len(done) / elapsed:.0f}/s);"
            f" event-loop lag p50 {lags[len(lags) // 2]:.0f} ms, p95 {lags[int(len(lags) * 0.95)]:.0f} ms,"
            f" max {lags[-1]:.0f} ms; search keystroke to paint median"
            f" {sorted(typed)[len(typed) // 2] * 1000:.0f} ms"
        )
    finally:
        context.close()
    assert tab.errors == []
