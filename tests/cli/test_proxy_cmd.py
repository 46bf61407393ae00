"""``waypost proxy``'s command line: bad input is refused before serving, with its reason.

None of these needs an agent: each is refused before the first request to one."""

from __future__ import annotations

import socket
from pathlib import Path

from cli_support import Result, run_cli

from waypost.testing import free_port


def waypost(*args: str, timeout: float = 30) -> Result:
    return run_cli(None, *args, env={"CONSUL_HTTP_ADDR": f"127.0.0.1:{free_port()}"}, timeout=timeout)


def test_malformed_config_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "proxy.hcl"
    path.write_text('proxy {\n  listener {\n    service = "web"\n    bind = \n  }\n}\n')
    result = waypost("proxy", "-config", str(path))
    assert result.code == 1
    assert f"waypost proxy: failed to parse {path}: " in result.err
    assert "at line 4" in result.err


def test_a_bad_setting_names_the_listeners_line(tmp_path: Path) -> None:
    path = tmp_path / "proxy.json"
    path.write_text('{"proxy": {"listener": [\n {"service": "a", "bind": "127.0.0.1:1"},\n'
                    ' {"service": "b", "bind": "127.0.0.1:2", "balance": "hash"}]}}')  # fmt: skip
    result = waypost("proxy", "-config", str(path))
    assert (result.code, result.out) == (1, "")
    assert f"failed to parse {path}: line 3: listener.balance: must be one of" in result.err


def test_a_port_in_use_is_a_start_up_error_naming_the_listener(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = tmp_path / "proxy.hcl"
        path.write_text(
            f'proxy {{\n  listener {{\n    service = "free"\n    bind = "127.0.0.1:{free_port()}"\n  }}\n'
            f'  listener {{\n    service = "web"\n    bind = "127.0.0.1:{port}"\n  }}\n}}\n'
        )
        result = waypost("proxy", "-config", str(path), timeout=20)
    assert result.code == 1
    assert f"tcp listener 127.0.0.1:{port} for service 'web': cannot listen on 127.0.0.1:{port}" in result.err


def test_usage_errors() -> None:
    assert waypost("proxy", "-status-addr", "nowhere").err.startswith(
        "waypost proxy: -status-addr: expected ip:port, got 'nowhere'"
    )
    assert waypost("proxy", "-config", "/nonexistent/p.hcl").code == 1
    assert "Usage: waypost proxy" in waypost("proxy", "-h").out
