"""maint, info, event, reload, leave and monitor: the commands that talk to one agent."""

from __future__ import annotations

import select
import signal
import subprocess
import sys

from cli_support import Runner, run_cli

from waypost.testing import AgentProcess


def test_maint_node_and_service(waypost: Runner, dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "maintsvc", "ID": "maintsvc-1"})
    assert waypost("maint").out == ""
    r = waypost("maint", "-enable", "-reason", "kernel upgrade")
    assert (r.code, r.out) == (0, "Node maintenance is now enabled\n")
    r = waypost("maint", "-enable", "-service=maintsvc-1", "-reason=deploy")
    assert r.out == 'Service maintenance is now enabled for "maintsvc-1"\n'
    listing = waypost("maint").out
    assert "Node:\n  Name:   test-node\n  Reason: kernel upgrade\n" in listing
    assert "Service:\n  ID:     maintsvc-1\n  Reason: deploy\n" in listing
    assert waypost("maint", "-disable", "-service=maintsvc-1").code == 0
    assert waypost("maint", "-disable").out == "Node maintenance is now disabled\n"
    assert waypost("maint").out == ""


def test_maint_usage_errors(waypost: Runner) -> None:
    assert waypost("maint", "-enable", "-disable").err == "Only one of -enable or -disable may be provided\n"
    assert waypost("maint", "-reason=x").err == "Reason may only be provided with -enable\n"
    assert waypost("maint", "-service=x").err == "Service requires either -enable or -disable\n"


def test_info_groups_stats(waypost: Runner) -> None:
    r = waypost("info")
    assert r.code == 0
    lines = r.out.splitlines()
    groups = [line for line in lines if not line.startswith("\t")]
    assert groups == sorted(groups)
    assert "agent:" in groups
    assert "build:" in groups
    assert any(line.startswith("\tservices = ") for line in lines)
    assert waypost("info", "-datacenter=dc1").code == 1  # info takes only the client flags, as in Consul


def test_event_fire(waypost: Runner, dev_agent: AgentProcess) -> None:
    r = waypost("event", "-name=deploy", "-node=test-node", "build-42")
    assert r.code == 0
    event_id = r.out.removeprefix("Event ID: ").strip()
    fired = {e["ID"]: e for e in dev_agent.get("/v1/event/list?name=deploy")}
    assert fired[event_id]["NodeFilter"] == "test-node"
    assert waypost("event").err.startswith("Event name must be specified")
    assert waypost("event", "-name=x", "-tag=t").err == "Cannot provide tag filter without service filter.\n"
    assert waypost("event", "-name=x", "a", "b").code == 1


def test_reload(waypost: Runner) -> None:
    r = waypost("reload")
    assert (r.code, r.out) == (0, "Configuration reload triggered\n")


def test_monitor_streams_the_log_until_interrupted(dev_agent: AgentProcess) -> None:
    argv = [sys.executable, "-m", "waypost", "monitor", "-log-level=debug", f"-http-addr={dev_agent.address}"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            assert proc.stdout is not None
            line = ""
            for _ in range(20):  # the stream may start before or after the first reload
                assert run_cli(dev_agent, "reload").code == 0
                ready, _, _ = select.select([proc.stdout], [], [], 1.0)
                if ready:
                    line = proc.stdout.readline().decode()
                    break
            assert "reload" in line.lower()
        finally:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=10)
        assert code == 0


def test_monitor_rejects_unknown_level(waypost: Runner) -> None:
    r = waypost("monitor", "-log-level=loud", timeout=10)
    assert r.code == 1
    assert r.err.startswith("Error starting monitor: Unexpected response code: 400")


def test_unreachable_agent_and_address_forms(dev_agent: AgentProcess) -> None:
    r = run_cli(None, "kv", "get", "x", env={"CONSUL_HTTP_ADDR": "127.0.0.1:1"})
    assert r.code == 1
    assert r.err.startswith("Error querying Consul agent:")
    assert "connection refused" in r.err.lower()
    assert run_cli(None, "catalog", "datacenters", "-http-addr", f"http://{dev_agent.address}").out == "dc1\n"
    assert run_cli(None, "catalog", "datacenters", f"-http-addr={dev_agent.address}").out == "dc1\n"
    assert run_cli(None, "catalog", "datacenters", env={"WAYPOST_HTTP_ADDR": dev_agent.url}).out == "dc1\n"
    r = run_cli(
        None,
        "catalog",
        "datacenters",
        "-token=secret",
        "-datacenter=dc1",
        "-stale",
        env={"CONSUL_HTTP_ADDR": dev_agent.address, "CONSUL_HTTP_TOKEN": "t"},
    )
    assert r.out == "dc1\n"
    assert run_cli(dev_agent, "members", "-token-file=/nonexistent").code == 1


def test_leave_stops_the_agent() -> None:
    with AgentProcess(["-dev", "-node", "leaver"]) as agent:
        r = run_cli(agent, "leave")
        assert (r.code, r.out) == (0, "Graceful leave complete\n")
        assert agent.proc is not None
        assert agent.proc.wait(timeout=20) == 0
        assert run_cli(agent, "leave").code == 1
