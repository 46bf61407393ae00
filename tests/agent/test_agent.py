"""The agent process: config-file services, reload, anti-entropy, maintenance, leave."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from waypost.testing import AgentProcess


def _wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


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
        assert _wait_for(lambda: set(agent.get("/v1/agent/services")) == {"web", "cache"})
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
    assert _wait_for(lambda: len(dev_agent.get("/v1/catalog/service/kept")) == 1)
    dev_agent.put(
        "/v1/catalog/register", {"Node": node, "Address": "127.0.0.1", "Service": {"Service": "stray"}}
    )
    assert _wait_for(lambda: dev_agent.get("/v1/catalog/service/stray") == [])


def test_maintenance_modes_add_critical_checks(dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "maint", "ID": "maint-1"})
    dev_agent.put("/v1/agent/service/maintenance/maint-1?enable=true&reason=upgrade")
    check = dev_agent.get("/v1/agent/checks")["_service_maintenance:maint-1"]
    assert (check["Status"], check["Notes"]) == ("critical", "upgrade")
    dev_agent.put("/v1/agent/maintenance?enable=true")
    assert "_node_maintenance" in dev_agent.get("/v1/agent/checks")
    assert dev_agent.get("/v1/health/service/maint?passing") == []
    dev_agent.put("/v1/agent/maintenance?enable=false")
    dev_agent.put("/v1/agent/service/maintenance/maint-1?enable=false")
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
