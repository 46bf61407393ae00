"""``waypost registrator`` end to end: a real podman engine, real containers, a real agent.

Each test runs its own registrator process with its own ``-hostname`` (its services'
ID prefix and Meta marker) and its own service names, so tests sharing the module's
agent and engine never see each other's services.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest

from waypost.testing import AgentProcess, free_port, wait_for
from waypost.testing.podman import IMAGE, ULIMITS, Podman, start_podman

WEB = "localhost/web:latest"
SLEEP = ("/bin/sleep", "600")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    try:
        podman = start_podman(tmp_path_factory.mktemp("podman"))
        podman.run("tag", IMAGE, WEB)
        podman.start_service()
    except RuntimeError as exc:
        pytest.skip(f"no container engine could run here: {exc}")
    yield podman
    podman.stop_service()
    podman.run("rm", "-af", "-t", "0")


class Registrator:
    """One ``waypost registrator`` process with its log in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "waypost", "registrator", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start(engine: Podman, tmp_path: Path) -> Iterator[Callable[..., Registrator]]:
    """Start registrators against the engine; they stop and the containers go at the end."""
    made: list[Registrator] = []

    def launch(*args: str, docker_host: str = "", **env_vars: str) -> Registrator:
        env = {**os.environ, "DOCKER_HOST": docker_host or f"unix://{engine.socket}", **env_vars}
        made.append(Registrator(list(args), env, tmp_path / f"registrator-{len(made)}.log"))
        wait_for(lambda: "Starting registrator" in made[-1].log(), limit=20)
        return made[-1]

    yield launch
    for registrator in made:
        registrator.stop()
    engine.run("rm", "-af", "-t", "0")


def run(engine: Podman, name: str, *options: str, command: tuple[str, ...] = SLEEP) -> None:
    engine.run("run", "-d", "--name", name, *ULIMITS, *options, WEB, *command)


def host_port(engine: Podman, name: str, port: str = "80/tcp") -> int:
    ports = json.loads(engine.run("inspect", "--format", "{{json .NetworkSettings.Ports}}", name))
    return int(ports[port][0]["HostPort"])


def ours(agent: AgentProcess, host: str) -> dict[str, Any]:
    services = agent.get("/v1/agent/services")
    return {k: v for k, v in services.items() if (v.get("Meta") or {}).get("registrator-host") == host}


def catalog(agent: AgentProcess, name: str) -> list[tuple[str, str, int, list[str]]]:
    return [
        (s["ServiceID"], s["ServiceAddress"], s["ServicePort"], s["ServiceTags"])
        for s in agent.get(f"/v1/catalog/service/{name}")
    ]


def dns_ports(agent: AgentProcess, name: str) -> list[int]:
    query = dns.message.make_query(f"{name}.service.consul", "SRV")
    reply = dns.query.udp(query, "127.0.0.1", port=agent.dns_port, timeout=2)
    return sorted(rd.port for rrset in reply.answer for rd in rrset)


def check_status(agent: AgentProcess, check_id: str) -> str | None:
    found = agent.get("/v1/agent/checks").get(check_id)
    return None if found is None else str(found["Status"])


def test_start_stop_pause_kill_remove_reach_catalog_and_dns(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    start("-hostname", "h-life", "-ip", "127.0.0.1", f"consul://{dev_agent.address}")
    run(engine, "life", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=life", "-e", "SERVICE_TAGS=a,b\\,c",
        "-l", "SERVICE_REGION=eu")  # fmt: skip

    def registered() -> bool:
        port = host_port(engine, "life")
        return catalog(dev_agent, "life") == [
            ("h-life:life:80", "127.0.0.1", port, ["a", "b,c"])
        ] and dns_ports(dev_agent, "life") == [port]

    def gone() -> bool:
        return catalog(dev_agent, "life") == [] and dns_ports(dev_agent, "life") == []

    wait_for(registered)
    assert ours(dev_agent, "h-life")["h-life:life:80"]["Meta"]["region"] == "eu"
    for leave, back in (("stop", "start"), ("pause", "unpause"), ("kill", "start")):
        engine.run(leave, *(("-t", "0") if leave == "stop" else ()), "life")
        wait_for(gone)
        engine.run(back, "life")
        wait_for(registered)
    engine.run("rm", "-f", "-t", "0", "life")
    wait_for(gone)


def test_registrator_restart_loses_nothing_and_duplicates_nothing(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    run(engine, "keep", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=rs")
    run(engine, "gone", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=rs")
    # The agent's address from the consul CLI's environment instead of a registry URI.
    args = ("-hostname", "h-rs")
    first = start(*args, CONSUL_HTTP_ADDR=f"http://{dev_agent.address}")
    wait_for(lambda: set(ours(dev_agent, "h-rs")) == {"h-rs:keep:80", "h-rs:gone:80"})
    first.stop(signal.SIGKILL)
    engine.run("rm", "-f", "-t", "0", "gone")
    run(engine, "new", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=rs")
    start(*args, CONSUL_HTTP_ADDR=dev_agent.address)
    wait_for(lambda: set(ours(dev_agent, "h-rs")) == {"h-rs:keep:80", "h-rs:new:80"})
    assert sorted(s[0] for s in catalog(dev_agent, "rs")) == ["h-rs:keep:80", "h-rs:new:80"]


def test_engine_restart_is_followed_by_a_full_sync(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    registrator = start("-hostname", "h-eng", f"consul://{dev_agent.address}")
    run(engine, "e1", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=eng")
    wait_for(lambda: set(ours(dev_agent, "h-eng")) == {"h-eng:e1:80"})
    engine.stop_service()
    try:
        wait_for(lambda: "reconnecting with back-off" in registrator.log())
        engine.run("rm", "-f", "-t", "0", "e1")
        run(engine, "e2", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=eng")
    finally:
        engine.start_service()
    wait_for(lambda: set(ours(dev_agent, "h-eng")) == {"h-eng:e2:80"}, limit=60)
    assert "answers again" in registrator.log()


def test_agent_restart_gets_its_services_back(
    engine: Podman, tmp_path: Path, start: Callable[..., Registrator]
) -> None:
    first = AgentProcess(["-dev"], log_path=tmp_path / "agent.log").start()
    ports = {"http_port": first.http_port, "dns_port": first.dns_port, "server_port": first.server_port}
    try:
        registrator = start("-hostname", "h-ag", f"consul://{first.address}")
        run(engine, "a1", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=ag")
        wait_for(lambda: set(ours(first, "h-ag")) == {"h-ag:a1:80"})
        first.stop()
        wait_for(lambda: "retrying with back-off" in registrator.log())
        with AgentProcess(["-dev"], **ports, log_path=tmp_path / "agent2.log") as second:
            wait_for(lambda: set(ours(second, "h-ag")) == {"h-ag:a1:80"})
            assert "answers again" in registrator.log()
    finally:
        first.stop()


def test_malformed_settings_are_logged_with_the_container_and_skipped(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    registrator = start("-hostname", "h-bad", f"consul://{dev_agent.address}")
    run(
        engine,
        "bad-interval",
        "-p",
        "127.0.0.1::80",
        "-e",
        "SERVICE_CHECK_HTTP=/",
        "-e",
        "SERVICE_CHECK_INTERVAL=10",
    )
    run(engine, "bad-meta", "-p", "127.0.0.1::80", "-l", "SERVICE_a.b=1")
    run(engine, "fine", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=fine")
    wait_for(lambda: set(ours(dev_agent, "h-bad")) == {"h-bad:fine:80"})
    wait_for(lambda: "container bad-interval: SERVICE_CHECK_INTERVAL" in registrator.log())
    wait_for(lambda: "container bad-meta: agent refused service h-bad:bad-meta:80" in registrator.log())
    assert registrator.proc.poll() is None


def test_unreachable_engine_is_retried_and_unreachable_agent_fails_after_retries(
    dev_agent: AgentProcess, tmp_path: Path, start: Callable[..., Registrator]
) -> None:
    waiting = start(
        "-hostname", "h-un", f"consul://{dev_agent.address}", docker_host=f"unix://{tmp_path}/no.sock"
    )
    wait_for(lambda: "reconnecting with back-off" in waiting.log())
    assert waiting.proc.poll() is None
    args = ("-retry-attempts", "2", "-retry-interval", "50", f"consul://127.0.0.1:{free_port()}")
    failing = start(*args)
    assert failing.proc.wait(timeout=20) == 1
    assert "Connecting to backend (2/2)" in failing.log()
    assert "unreachable" in failing.log()


def test_cleanup_removes_this_hosts_dangling_entries_only(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    for sid in ("h-cl:ghost:80", "h-cl:ghost:53:udp", "elsewhere:ghost:80", "h-cl-hand-made"):
        dev_agent.put("/v1/agent/service/register", {"ID": sid, "Name": "ghost", "Port": 1})
    run(engine, "live", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=ghost")
    start("-hostname", "h-cl", "-cleanup", "-resync", "1", f"consul://{dev_agent.address}")

    def ids() -> set[str]:
        return {s[0] for s in catalog(dev_agent, "ghost")}

    wait_for(lambda: ids() == {"h-cl:live:80", "elsewhere:ghost:80", "h-cl-hand-made"})
    # Every -resync is a full sync, -cleanup included, as in Registrator.
    dev_agent.put("/v1/agent/service/register", {"ID": "h-cl:late:80", "Name": "ghost", "Port": 1})
    wait_for(lambda: ids() == {"h-cl:live:80", "elsewhere:ghost:80", "h-cl-hand-made"})


def test_port_settings_ignore_and_real_checks(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    start("-hostname", "h-pt", "-ip", "127.0.0.1", f"consul://{dev_agent.address}")
    serve = ("/bin/sh", "-c", "echo ok > /tmp/index.html; httpd -p 8080 -h /tmp; exec httpd -f -p 80 -h /tmp")
    run(engine, "ports", "-p", "127.0.0.1::80", "-p", "127.0.0.1::8080", "-p", "127.0.0.1::9000",
        "-e", "SERVICE_NAME=pt", "-e", "SERVICE_8080_NAME=admin", "-e", "SERVICE_8080_ID=admin-1",
        "-e", "SERVICE_9000_IGNORE=true", "-e", "SERVICE_80_CHECK_HTTP=/index.html",
        "-e", "SERVICE_80_CHECK_INTERVAL=1s", "-e", "SERVICE_8080_CHECK_TCP=true",
        "-e", "SERVICE_8080_CHECK_INTERVAL=1s", command=serve)  # fmt: skip
    run(engine, "ignored", "-p", "127.0.0.1::80", "-l", "SERVICE_IGNORE=1")
    run(engine, "beats", "-p", "127.0.0.1::80", "-l", "SERVICE_CHECK_TTL=30s",
        "-l", "SERVICE_CHECK_INITIAL_STATUS=passing", "-l", "SERVICE_CHECK_DEREGISTER_AFTER=10m")  # fmt: skip
    wait_for(lambda: set(ours(dev_agent, "h-pt")) == {"h-pt:ports:80", "admin-1", "h-pt:beats:80"})
    assert check_status(dev_agent, "service:h-pt:beats:80") == "passing"
    assert dev_agent.get("/v1/agent/checks")["service:h-pt:beats:80"]["Type"] == "ttl"
    services = ours(dev_agent, "h-pt")
    assert (services["h-pt:ports:80"]["Service"], services["admin-1"]["Service"]) == ("pt-80", "admin")
    assert services["admin-1"]["Port"] == host_port(engine, "ports", "8080/tcp")
    wait_for(lambda: check_status(dev_agent, "service:h-pt:ports:80") == "passing")
    wait_for(lambda: check_status(dev_agent, "service:admin-1") == "passing")
    checks = dev_agent.get("/v1/agent/checks")
    assert checks["service:h-pt:ports:80"]["Type"] == "http"
    assert checks["service:admin-1"]["Type"] == "tcp"


def test_port_published_on_ipv6_loopback(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    start("-hostname", "h-v6", f"consul://{dev_agent.address}")
    run(engine, "six", "-p", "[::1]::80", "-e", "SERVICE_NAME=six", "-e", "SERVICE_CHECK_TCP=true",
        "-e", "SERVICE_CHECK_INTERVAL=1s", command=("/bin/httpd", "-f", "-p", "80"))  # fmt: skip
    wait_for(lambda: set(ours(dev_agent, "h-v6")) == {"h-v6:six:80"})
    port = host_port(engine, "six")
    assert ours(dev_agent, "h-v6")["h-v6:six:80"]["Address"] == "::1"
    wait_for(lambda: check_status(dev_agent, "service:h-v6:six:80") == "passing")
    assert dev_agent.get("/v1/agent/checks")["service:h-v6:six:80"]["Definition"]["TCP"] == f"[::1]:{port}"


def test_container_healthcheck_is_mirrored(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    start("-hostname", "h-hc", f"consul://{dev_agent.address}")
    run(engine, "hc", "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=hc", "--health-cmd", "cat /tmp/ok",
        "--health-retries", "1")  # fmt: skip
    check = "service:h-hc:hc:80:health"
    wait_for(lambda: check_status(dev_agent, check) == "critical")
    engine.run("exec", "hc", "touch", "/tmp/ok")
    engine.run("healthcheck", "run", "hc")
    wait_for(lambda: check_status(dev_agent, check) == "passing")
    engine.run("exec", "hc", "rm", "/tmp/ok")
    with pytest.raises(RuntimeError):
        engine.run("healthcheck", "run", "hc")
    wait_for(lambda: check_status(dev_agent, check) == "critical")
    assert "No such file" in dev_agent.get("/v1/agent/checks")[check]["Output"]


def test_deregister_on_success_keeps_failed_containers(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    start("-hostname", "h-os", "-deregister", "on-success", "-http-addr", dev_agent.address)
    for name, code in (("ok", 0), ("failed", 3)):
        run(
            engine,
            name,
            "-p",
            "127.0.0.1::80",
            "-e",
            "SERVICE_NAME=os",
            command=("/bin/sh", "-c", f"sleep 3; exit {code}"),
        )
    wait_for(lambda: set(ours(dev_agent, "h-os")) == {"h-os:ok:80", "h-os:failed:80"})
    wait_for(lambda: engine.run("inspect", "--format", "{{.State.Running}}", "failed") == "false")
    wait_for(lambda: set(ours(dev_agent, "h-os")) == {"h-os:failed:80"})
    engine.run("rm", "-f", "failed")
    wait_for(lambda: ours(dev_agent, "h-os") == {})


def test_internal_network_label_udp_tags_explicit_and_ttl(
    engine: Podman, dev_agent: AgentProcess, start: Callable[..., Registrator]
) -> None:
    for network in ("rfront", "rback"):
        engine.run("network", "create", network)
    try:
        registrator = start("-hostname", "h-in", "-internal", "-explicit", "-tags", "x,y", "-ttl", "3",
                            "-ttl-refresh", "1", f"consul://{dev_agent.address}")  # fmt: skip
        run(engine, "multi", "--network", "rfront", "--network", "rback", "-l", "SERVICE_NETWORK=rback",
            "-e", "SERVICE_NAME=multi", "--expose", "80", "--expose", "53/udp")  # fmt: skip
        run(engine, "anonymous", "--expose", "80")
        back = json.loads(engine.run("inspect", "--format", "{{json .NetworkSettings.Networks}}", "multi"))
        address = back["rback"]["IPAddress"]
        wait_for(lambda: len(ours(dev_agent, "h-in")) == 2)
        services = ours(dev_agent, "h-in")
        assert {
            (s["ID"], s["Service"], s["Address"], s["Port"], tuple(s["Tags"])) for s in services.values()
        } == {
            ("h-in:multi:80", "multi-80", address, 80, ("x", "y")),
            ("h-in:multi:53:udp", "multi-53", address, 53, ("x", "y", "udp")),
        }
        heartbeat = "service:h-in:multi:80:ttl"
        wait_for(lambda: check_status(dev_agent, heartbeat) == "passing")
        registrator.stop(signal.SIGKILL)
        wait_for(lambda: check_status(dev_agent, heartbeat) == "critical")
    finally:
        engine.run("rm", "-af", "-t", "0")
        engine.run("network", "rm", "rfront", "rback")
