"""``waypost connect``: the CA configuration commands and the sidecar proxy alias, from the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import Runner

from waypost.testing import AgentProcess


def test_get_config_prints_consuls_json(waypost: Runner) -> None:
    r = waypost("connect", "ca", "get-config")
    assert (r.code, r.err) == (0, "")
    config = json.loads(r.out)
    assert list(config) == [
        "Provider",
        "Config",
        "State",
        "ForceWithoutCrossSigning",
        "CreateIndex",
        "ModifyIndex",
    ]
    assert config["Provider"] == "consul"
    assert config["Config"]["LeafCertTTL"] == "72h"
    assert r.out.splitlines()[1].startswith('\t"Provider"')


def test_set_config_rotates_the_root(waypost: Runner, dev_agent: AgentProcess, tmp_path: Path) -> None:
    before = dev_agent.get("/v1/agent/connect/ca/roots")["ActiveRootID"]
    path = tmp_path / "ca.json"
    path.write_text(json.dumps({"Provider": "consul", "Config": {"LeafCertTTL": "48h"}}))
    r = waypost("connect", "ca", "set-config", "-config-file", str(path))
    assert (r.code, r.out.strip(), r.err) == (0, "Configuration updated!", "")
    roots = dev_agent.get("/v1/agent/connect/ca/roots")
    assert roots["ActiveRootID"] != before
    assert before in [root["ID"] for root in roots["Roots"]]
    assert json.loads(waypost("connect", "ca", "get-config").out)["Config"]["LeafCertTTL"] == "48h"


def test_set_config_errors(waypost: Runner, tmp_path: Path) -> None:
    r = waypost("connect", "ca", "set-config")
    assert (r.code, r.err.strip()) == (1, "The -config-file flag is required")
    r = waypost("connect", "ca", "set-config", "-config-file", str(tmp_path / "missing.json"))
    assert r.code == 1
    assert r.err.startswith("Error reading config file: ")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    r = waypost("connect", "ca", "set-config", "-config-file", str(bad))
    assert r.code == 1
    assert r.err.startswith("Error parsing config file: ")
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"Provider": "consul", "Config": {"LeafCertTTL": "1m"}}))
    r = waypost("connect", "ca", "set-config", "-config-file", str(short))
    assert r.code == 1
    assert "Error setting CA configuration: " in r.err
    assert "leaf cert TTL must be greater or equal than 1h0m0s" in r.err


def test_get_config_without_an_agent(waypost: Runner) -> None:
    r = waypost("connect", "ca", "get-config", "-http-addr=127.0.0.1:1")
    assert r.code == 1
    assert r.err.startswith("Error request CA configuration: ")


def test_connect_proxy_is_the_sidecar_mode(waypost: Runner) -> None:
    for args, message in [
        (("connect", "proxy", "-sidecar-for", "nobody"), "No sidecar proxy registered for nobody"),
        (
            ("connect", "proxy", "-service", "web", "-sidecar-for", "web"),
            "'-service' and '-sidecar-for' can't both be specified",
        ),
        (("connect", "proxy", "-upstream", "db:9191"), "-listen, -service-addr and -upstream need -service"),
        (
            ("connect", "proxy", "-service", "web", "-listen", "127.0.0.1:1"),
            "-service-addr must be specified with -listen",
        ),
        (
            ("proxy", "-sidecar-for", "x", "-config", "proxy.hcl"),
            "-sidecar-for takes its listeners from the registration",
        ),
    ]:
        r = waypost(*args)
        assert r.code == 1, args
        assert message in r.err


def test_group_help(waypost: Runner) -> None:
    assert waypost("connect").code == 1
    r = waypost("connect", "-h")
    assert r.code == 0
    assert "ca" in r.out
    assert "proxy" in r.out
    assert waypost("connect", "ca", "-h").code == 0
