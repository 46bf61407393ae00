"""Serving the UI without a browser: what a browser and a cache see over real HTTP from a
real agent (redirects, deep links, caching headers), and ``UIFiles`` on its own."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from waypost.testing import AgentProcess
from waypost.ui.serve import UIFiles, content_prefix


def _get(agent: AgentProcess, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """A dev agent with the UI moved to /dash/ (given without slashes, as Consul accepts)."""
    log = Path(tmp_path_factory.mktemp("dash")) / "agent.log"
    with AgentProcess(["-dev", "-ui-content-path", "dash"], log_path=log) as agent:
        yield agent


def test_root_redirects_to_the_ui_in_dev_mode(dev_agent: AgentProcess) -> None:
    resp = _get(dev_agent, "/")
    assert (resp.status, resp.getheader("Location")) == (301, "/ui/")
    resp = _get(dev_agent, "/ui")
    assert (resp.status, resp.getheader("Location")) == (301, "/ui/")


def test_index_is_revalidated_and_assets_cached_briefly(dev_agent: AgentProcess) -> None:
    index = _get(dev_agent, "/ui/")
    assert index.status == 200
    assert index.getheader("Content-Type") == "text/html; charset=utf-8"
    assert index.getheader("Cache-Control") == "no-cache"
    assert "default-src 'self'" in (index.getheader("Content-Security-Policy") or "")
    etag = index.getheader("ETag")
    assert etag
    assert etag.startswith('"')
    again = _get(dev_agent, "/ui/", {"If-None-Match": etag})
    assert (again.status, again.getheader("ETag")) == (304, etag)
    script = _get(dev_agent, "/ui/js/app.js")
    assert script.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert script.getheader("Cache-Control") == "public, max-age=300"
    assert (
        _get(dev_agent, "/ui/js/app.js", {"If-None-Match": f'"x", {script.getheader("ETag")}'}).status == 304
    )
    assert _get(dev_agent, "/ui/css/app.css").getheader("Content-Type") == "text/css; charset=utf-8"


def test_deep_links_load_the_ui_but_a_missing_module_is_missing(dev_agent: AgentProcess) -> None:
    index_tag = _get(dev_agent, "/ui/").getheader("ETag")
    for path in ("/ui/services/web", "/ui/nodes/a%20b", "/ui/kv/a/b/c"):
        resp = _get(dev_agent, path)
        assert (resp.status, resp.getheader("ETag")) == (200, index_tag), path
    assert _get(dev_agent, "/ui/js/pages/nope.js").status == 404
    assert _get(dev_agent, "/ui/css/nope.css").status == 404


def test_content_path_moves_the_ui(dash: AgentProcess) -> None:
    assert _get(dash, "/").getheader("Location") == "/dash/"
    status, _, body = dash.request("GET", "/dash/")
    assert status == 200
    assert b'<base href="/dash/">' in body
    assert _get(dash, "/dash/js/api.js").status == 200
    assert _get(dash, "/ui/").status == 404


def test_ui_off_keeps_consuls_greeting(tmp_path: Path) -> None:
    with AgentProcess(["-dev", "-ui=false"], log_path=tmp_path / "agent.log") as agent:
        status, _, body = agent.request("GET", "/")
        assert status == 200
        assert body.startswith(b"Consul Agent: UI disabled.")
        assert _get(agent, "/ui/").status == 404


def test_content_prefix_is_normalised_as_consul_does() -> None:
    assert [content_prefix(p) for p in ("", "/ui/", "ui", "/a/b", "a/b/", "/")] == [
        "/ui/", "/ui/", "/ui/", "/a/b/", "/a/b/", "/",
    ]  # fmt: skip


def test_a_ui_directory_replaces_the_built_in_files(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<base href="/ui/"><p>mine</p>')
    (tmp_path / "app.js").write_text("export {};")
    files = UIFiles("/console", str(tmp_path))
    status, _headers, body = files.answer("/console/")
    assert status == 200
    assert body == b'<base href="/console/"><p>mine</p>'
    assert files.answer("/console/app.js")[2] == b"export {};"
    assert files.answer("/console/../../etc/passwd")[2] == body
    assert files.answer("/elsewhere/app.js")[0] == 404
