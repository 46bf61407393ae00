"""The agent process: config-file services, reload, anti-entropy, maintenance, leave."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from waypost.testing import AgentProcess, free_port, wait_for


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    d = tmp_path / "conf"
    d.mkdir()
    (d / "web.json").write_text(json.dumps({"service": {"name": "web", "port": 80, "check": {"ttl": "30s"}}}))
    (d / "db.hcl").write_text('service {\n  name = "db"\n  port = 5432\n  tags = ["primary"]\n}\n')
    return d


def test_config_services_register_and_reload_on_sighup(config_dir: Path, tmp_path: Path) -> None:
    with AgentProcess(["-dev", "-config-dir", str(config_dir)], log_path=tmp_path / "log") as agent:
        assert set(agent.get("/v1/agent/services")) == {"web", "db"}
        assert agent.get("/v1/catalog/service/db")[0]["ServiceTags"] == ["primary"]
        (config_dir / "db.hcl").unlink()
        (config_dir / "cache.json").write_text(json.dumps({"services": [{"name": "cache", "port": 6379}]}))
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: set(agent.get("/v1/agent/services")) == {"web", "cache"})
        (config_dir / "cache.json").unlink()
        agent.put("/v1/agent/reload")
        assert set(agent.get("/v1/agent/services")) == {"web"}


def test_invalid_config_stops_start_up_with_a_message_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ports": {"http": "abc"}}))
    proc = subprocess.run(
        [sys.executable, "-m", "waypost", "agent", "-dev", "-config-file", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "bad.json" in proc.stderr
    assert "ports.http" in proc.stderr


def test_anti_entropy_repairs_catalog_changed_behind_the_agents_back(dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "kept", "Port": 1})
    node = dev_agent.get("/v1/agent/self")["Config"]["NodeName"]
    assert dev_agent.put("/v1/catalog/deregister", {"Node": node, "ServiceID": "kept"}) is True
    wait_for(lambda: len(dev_agent.get("/v1/catalog/service/kept")) == 1)
    dev_agent.put(
        "/v1/catalog/register", {"Node": node, "Address": "127.0.0.1", "Service": {"Service": "stray"}}
    )
    wait_for(lambda: dev_agent.get("/v1/catalog/service/stray") == [])


def test_maintenance_modes_add_critical_checks(dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "maint", "ID": "maint-1"})
    dev_agent.put("/v1/agent/service/maintenance/maint-1?enable=true&reason=upgrade")
    check = dev_agent.get("/v1/agent/checks")["_service_maintenance:maint-1"]
    assert (check["Status"], check["Notes"]) == ("critical", "upgrade")
    dev_agent.put("/v1/agent/maintenance?enable=T")
    assert "_node_maintenance" in dev_agent.get("/v1/agent/checks")
    assert dev_agent.get("/v1/health/service/maint?passing") == []
    dev_agent.put("/v1/agent/maintenance?enable=0")
    dev_agent.put("/v1/agent/service/maintenance/maint-1?enable=FALSE")
    assert not {"_node_maintenance", "_service_maintenance:maint-1"} & set(dev_agent.get("/v1/agent/checks"))


def test_agent_health_endpoints_answer_with_consul_status_codes(dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "hc", "ID": "hc-1", "Check": {"TTL": "30s"}})
    status, _, body = dev_agent.request("GET", "/v1/agent/health/service/id/hc-1?format=text")
    assert (status, body) == (503, b"critical")
    dev_agent.put("/v1/agent/check/warn/service:hc-1")
    status, _, body = dev_agent.request("GET", "/v1/agent/health/service/name/hc")
    assert status == 429
    assert json.loads(body)[0]["AggregatedStatus"] == "warning"
    assert dev_agent.request("GET", "/v1/agent/health/service/name/none")[0] == 404


def test_hash_blocking_on_agent_service(dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "hashed", "Port": 1})
    _, headers, _ = dev_agent.request("GET", "/v1/agent/service/hashed")
    digest = headers["X-Consul-Contenthash"]
    out: dict[str, str] = {}

    def block() -> None:
        _, h, _ = dev_agent.request("GET", f"/v1/agent/service/hashed?hash={digest}&wait=10s")
        out["hash"] = h["X-Consul-Contenthash"]

    t = threading.Thread(target=block)
    t.start()
    time.sleep(0.3)
    assert "hash" not in out
    dev_agent.put("/v1/agent/service/register", {"Name": "hashed", "Port": 2})
    t.join(10)
    assert out["hash"] != digest


def test_filter_on_endpoints(dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "flt", "ID": "flt-a", "Meta": {"env": "prod"}})
    dev_agent.put("/v1/agent/service/register", {"Name": "flt", "ID": "flt-b", "Meta": {"env": "dev"}})
    got = dev_agent.get("/v1/health/service/flt?filter=Service.Meta.env%20%3D%3D%20prod")
    assert [e["Service"]["ID"] for e in got] == ["flt-a"]
    got = dev_agent.get("/v1/catalog/service/flt?filter=ServiceMeta.env%20!%3D%20prod")
    assert [e["ServiceID"] for e in got] == ["flt-b"]
    assert set(dev_agent.get("/v1/agent/services?filter=Service%20%3D%3D%20flt")) == {"flt-a", "flt-b"}


def test_metrics_json_and_prometheus(dev_agent: AgentProcess) -> None:
    assert {g["Name"] for g in dev_agent.get("/v1/agent/metrics")["Gauges"]} >= {"consul.catalog.services"}
    status, headers, body = dev_agent.request("GET", "/v1/agent/metrics?format=prometheus")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert b"consul_catalog_services " in body


def test_leave_stops_the_agent(tmp_path: Path) -> None:
    agent = AgentProcess(["-dev"], log_path=tmp_path / "log").start()
    try:
        agent.put("/v1/agent/leave")
        assert agent.proc is not None
        assert agent.proc.wait(timeout=10) == 0
    finally:
        agent.stop()


def test_monitor_streams_the_log(dev_agent: AgentProcess) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", dev_agent.http_port, timeout=10)
    conn.request("GET", "/v1/agent/monitor?loglevel=info")
    resp = conn.getresponse()
    assert resp.status == 200
    dev_agent.put("/v1/agent/service/register", {"Name": "monitored"})
    line = resp.readline()
    while b"monitored" not in line:
        line = resp.readline()
    assert b"Synced service: service=monitored" in line
    conn.close()
    assert dev_agent.request("GET", "/v1/agent/monitor?loglevel=loud")[0] == 400


def _client_args(tmp_path: Path, name: str, *extra: str) -> list[str]:
    return ["-data-dir", str(tmp_path / name), "-bind", "127.0.0.1", "-node", name, *extra]


def test_store_api_is_served_on_the_server_port_only(dev_agent: AgentProcess) -> None:
    assert dev_agent.request("GET", "/v1/internal/store/revision")[0] == 404
    assert dev_agent.request("PUT", "/v1/internal/store/txn", b"\x80")[0] == 404
    store_api = f"http://{dev_agent.server_address}"
    with urllib.request.urlopen(f"{store_api}/v1/internal/store/revision", timeout=10) as resp:
        assert (resp.status, resp.headers["Content-Type"]) == (200, "application/msgpack")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{store_api}/v1/agent/self", timeout=10)
    refused.value.close()
    assert refused.value.code == 404
    assert dev_agent.get("/v1/status/leader") == dev_agent.server_address
    assert dev_agent.get("/v1/agent/self")["Member"]["Tags"]["port"] == str(dev_agent.server_port)


def test_client_started_alone_serves_locally_and_joins_later(tmp_path: Path) -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    args = _client_args(tmp_path, "early", "-join", unreachable)
    with AgentProcess(args, log_path=tmp_path / "c.log", wait_for_leader=False) as client:
        client.put("/v1/agent/service/register", {"Name": "early-svc", "Port": 1, "Check": {"TTL": "30s"}})
        client.put("/v1/agent/check/pass/service:early-svc")
        assert set(client.get("/v1/agent/services")) == {"early-svc"}
        for path in ("/v1/catalog/services", "/v1/status/leader", "/v1/kv/x", "/v1/health/service/early-svc"):
            assert client.request("GET", path)[::2] == (500, b"No known Consul servers"), path
        assert [(m["Name"], m["Status"]) for m in client.get("/v1/agent/members")] == [("early", 1)]
        assert client.get("/v1/agent/self")["Stats"]["consul"]["known_servers"] == "0"
        assert client.request("GET", "/v1/agent/metrics")[0] == 200
        status, _, body = client.request("PUT", f"/v1/agent/join/{unreachable}")
        assert status == 500
        assert body.startswith(b"1 error occurred:\n\t* Failed to join 127.0.0.1:")
        assert client.request("PUT", "/v1/agent/join/127.0.0.1:99999")[0] == 400
        with AgentProcess(["-dev", "-node", "late-server"], log_path=tmp_path / "s.log") as server:
            public_port = client.request("PUT", f"/v1/agent/join/{server.address}")
            assert public_port[0] == 500
            client.put(f"/v1/agent/join/{server.server_address}")
            wait_for(lambda: [e["Node"]["Node"] for e in server.get("/v1/health/service/early-svc?passing")]
                     == ["early"])  # fmt: skip
            assert client.get("/v1/status/leader") == server.server_address
            members = {m["Name"]: m["Status"] for m in client.get("/v1/agent/members")}
            assert members == {"early": 1, "late-server": 1}


def test_retry_join_waits_for_a_server_started_later(tmp_path: Path) -> None:
    port = free_port()
    args = _client_args(tmp_path, "patient", "-retry-join", f"127.0.0.1:{port}", "-retry-interval", "200ms")
    with AgentProcess(args, log_path=tmp_path / "c.log", wait_for_leader=False) as client:
        assert client.request("GET", "/v1/catalog/nodes")[0] == 500
        with AgentProcess(["-dev"], server_port=port, log_path=tmp_path / "s.log") as server:
            wait_for(lambda: client.request("GET", "/v1/catalog/node/patient")[0] == 200)
            assert server.get("/v1/catalog/node/patient")["Node"]["Node"] == "patient"


def _run_agent(args: list[str]) -> subprocess.CompletedProcess[str]:
    ports = ["-http-port", str(free_port()), "-dns-port", "-1"]
    argv = [sys.executable, "-m", "waypost", "agent", *args, *ports]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_retry_max_exhausted_stops_the_agent_with_exit_code_1(tmp_path: Path) -> None:
    joining = ("-retry-join", f"127.0.0.1:{free_port()}", "-retry-max", "2", "-retry-interval", "50ms")
    proc = _run_agent(_client_args(tmp_path, "quitter", *joining))
    assert proc.returncode == 1
    assert "max join retry exhausted" in proc.stdout + proc.stderr


def test_malformed_join_address_stops_start_up(tmp_path: Path) -> None:
    proc = _run_agent(_client_args(tmp_path, "typo", "-retry-join", "host:port"))
    assert proc.returncode == 1
    assert "invalid address 'host:port'" in proc.stderr
