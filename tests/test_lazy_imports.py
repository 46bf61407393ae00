"""The libraries ``waypost.lazy_imports`` defers stay unloaded in an agent that does not use
them, and work the first time a feature does: real agent subprocesses, their memory maps
read for the libraries' extension modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from waypost.testing import AgentProcess
from waypost.testing.waiting import wait_for

SRC = Path(__file__).resolve().parents[1] / "src"


def _maps(agent: AgentProcess) -> str:
    assert agent.proc is not None
    return Path(f"/proc/{agent.proc.pid}/maps").read_text()


def test_importing_the_agent_runs_none_of_the_deferred_libraries() -> None:
    probe = (
        "import sys, waypost.agent.agent, waypost.api.routes\n"
        "deferred = ('aiohttp.client', 'yarl._url', 'lark.lark', 'cryptography.x509.base', 're2._re2',\n"
        "            'dns.message', 'waypost.dns.resolver')\n"
        "print([m for m in deferred if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True,
        env={"PYTHONPATH": str(SRC)},
    )  # fmt: skip
    assert json.loads(out.stdout.replace("'", '"')) == []


def test_a_filter_works_the_first_time_one_is_asked_for(dev_agent: AgentProcess) -> None:
    assert "aiohttp" not in _maps(dev_agent)
    nodes = dev_agent.get("/v1/catalog/nodes?filter=" + quote('Node == "test-node"'))
    assert [n["Node"] for n in nodes] == ["test-node"]
    assert dev_agent.get("/v1/catalog/nodes?filter=" + quote('Node != "test-node"')) == []
    assert "/re2/" not in _maps(dev_agent)  # only a ``matches`` needs Go's regexp
    assert len(dev_agent.get("/v1/catalog/nodes?filter=" + quote('Node matches "^test-"'))) == 1
    assert "/re2/" in _maps(dev_agent)
    status, _, body = dev_agent.request("GET", "/v1/catalog/nodes?filter=" + quote('Node matches "(?=x)"'))
    assert (status, b"Failed to compile regular expression" in body) == (400, True)
    status, _, body = dev_agent.request("GET", "/v1/catalog/nodes?filter=" + quote("Node =="))
    assert status == 400
    assert b"Syntax error" in body


def test_a_client_agent_relays_without_aiohttp_and_loads_the_ca_on_first_use(tmp_path: Path) -> None:
    with AgentProcess(["-dev", "-node", "srv"], log_path=tmp_path / "server.log") as server:
        args = [
            *("-bind", "127.0.0.1", "-node", "cli", "-data-dir", str(tmp_path / "client")),
            *("-retry-interval", "1s", "-retry-join", server.server_address),
        ]
        with AgentProcess(args, log_path=tmp_path / "client.log", wait_for_leader=False) as client:
            wait_for(lambda: {"srv", "cli"} <= {n["Node"] for n in client.get("/v1/catalog/nodes")}, 30)
            web = {"Name": "web", "Check": {"HTTP": f"{client.url}/v1/status/leader", "Interval": "1s"}}
            client.put("/v1/agent/service/register", web)
            wait_for(lambda: client.get("/v1/agent/checks")["service:web"]["Status"] == "passing", 30)
            assert "aiohttp" not in _maps(client)  # store calls, relays and HTTP checks: waypost.http_client
            assert "cryptography" not in _maps(client)
            leaf = client.get("/v1/agent/connect/ca/leaf/web")
            assert leaf["Service"] == "web"
            assert leaf["CertPEM"].startswith("-----BEGIN CERTIFICATE-----")
            assert "cryptography" in _maps(client)
        assert "aiohttp" not in _maps(server)


def test_a_restarted_server_loads_the_ca_only_to_sign(tmp_path: Path) -> None:
    args = ["-server", "-bootstrap-expect", "1", "-node", "srv", "-data-dir", str(tmp_path / "data")]
    with AgentProcess(args, log_path=tmp_path / "first.log") as first:
        wait_for(lambda: first.get("/v1/connect/ca/roots")["Roots"], 15)
        roots = first.get("/v1/connect/ca/roots")
        assert "cryptography" in _maps(first)  # the first start created the CA
    with AgentProcess(args, log_path=tmp_path / "again.log") as again:
        assert again.get("/v1/connect/ca/roots")["ActiveRootID"] == roots["ActiveRootID"]
        assert "cryptography" not in _maps(again)
        assert again.get("/v1/agent/connect/ca/leaf/web")["Service"] == "web"
        assert "cryptography" in _maps(again)
