"""The haproxy.cfg writer: the file real HAProxy accepts, with stable names and empty slots."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from waypost.proxy.config import ListenerConfig
from waypost.proxy.haproxy_config import HaproxySettings, backend_name, render

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


@needs_haproxy
def test_haproxy_accepts_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(render([WEB, API], HaproxySettings(str(tmp_path / "admin.sock"))))
    done = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
