"""The haproxy.cfg writer: the file real HAProxy accepts, with stable names and empty slots."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from waypost.proxy.config import ListenerConfig
from waypost.proxy.haproxy_config import HaproxySettings, backend_name, render
from waypost.proxy.haproxy_routes import Route

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
needs_haproxy = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")

WEB = ListenerConfig("web", "127.0.0.1", 9100, balance="least_conn", connect_timeout=1.5)
API = ListenerConfig("api v2", "127.0.0.1", 9101, idle_timeout=30.0)


def test_one_frontend_and_one_slotted_backend_per_listener() -> None:
    text = render([WEB, API], HaproxySettings("/run/h.sock", slots=4))
    assert "stats socket /run/h.sock mode 600 level admin expose-fd listeners" in text
    assert text.count("\nfrontend ") == 2
    assert text.count("\nbackend ") == 2
    assert "frontend f_web_127.0.0.1_9100\n    bind 127.0.0.1:9100" in text
    assert "    server-template s 1-4 127.0.0.1:1 disabled" in text
    assert "    balance leastconn" in text
    assert "    timeout connect 1500ms" in text
    assert backend_name(API) == "b_api_v2_127.0.0.1_9101"
    assert "    timeout server 30000ms" in text


def test_the_same_listeners_in_any_order_write_the_same_file() -> None:
    settings = HaproxySettings("/run/h.sock")
    assert render([WEB, API], settings) == render([API, WEB], settings)


def test_udp_listeners_and_zero_slots_are_refused() -> None:
    with pytest.raises(ValueError, match="HAProxy proxies TCP only"):
        render([ListenerConfig("dns", "127.0.0.1", 53, protocol="udp")], HaproxySettings("/s"))
    with pytest.raises(ValueError, match="slots: must be at least 1"):
        render([WEB], HaproxySettings("/s", slots=0))


def test_the_http_frontend_and_a_backend_per_route_only_with_an_http_bind() -> None:
    route = Route("web", "example.com", "/api")
    assert "f_http" not in render([WEB], HaproxySettings("/s"), [route])
    text = render([WEB], HaproxySettings("/s", http_bind="127.0.0.1:9200"), [route])
    assert "frontend f_http\n    mode http\n    bind 127.0.0.1:9200" in text
    assert f"backend {route.backend}\n    mode http" in text


def test_servers_state_is_loaded_from_the_file_saved_before_a_reload() -> None:
    text = render([WEB], HaproxySettings("/run/h.sock"))
    assert "    server-state-file /run/h.sock.state" in text
    assert "    load-server-state-from-file global" in text


@needs_haproxy
def test_haproxy_accepts_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    settings = HaproxySettings(str(tmp_path / "admin.sock"), http_bind="127.0.0.1:9200")
    cfg.write_text(render([WEB, API], settings, [Route("web", "example.com", "/api"), Route("api", "", "/")]))
    done = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
