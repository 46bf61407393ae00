from __future__ import annotations

from pathlib import Path

from cli_support import Runner

from waypost.testing import AgentProcess

HCL = """
service {
  name = "hclsvc"
  id   = "hclsvc-1"
  port = 9000
  tags = ["v1"]
}
"""

JSON = '{"services": [{"name": "jsona", "port": 1}, {"name": "jsonb", "id": "jsonb-1", "port": 2}]}'


def test_register_with_flags_and_deregister_by_id(waypost: Runner, dev_agent: AgentProcess) -> None:
    r = waypost(
        "services",
        "register",
        "-name=flagged",
        "-port",
        "8080",
        "-tag=x",
        "--tag=y",
        "-meta",
        "team=a",
        "-address=10.1.2.3",
    )
    assert (r.code, r.out) == (0, "Registered service: flagged\n")
    svc = dev_agent.get("/v1/agent/services")["flagged"]
    assert (svc["Port"], svc["Tags"], svc["Meta"]) == (8080, ["x", "y"], {"team": "a"})
    assert svc["Address"] == "10.1.2.3"
    r = waypost("services", "deregister", "-id=flagged")
    assert (r.code, r.out) == (0, "Deregistered service: flagged\n")
    assert "flagged" not in dev_agent.get("/v1/agent/services")


def test_register_files_hcl_and_json(waypost: Runner, dev_agent: AgentProcess, tmp_path: Path) -> None:
    hcl, js = tmp_path / "one.hcl", tmp_path / "many.json"
    hcl.write_text(HCL)
    js.write_text(JSON)
    r = waypost("services", "register", "-tag=extra", str(hcl), str(js))
    assert r.code == 0, r.err
    assert r.out == "Registered service: hclsvc\nRegistered service: jsona\nRegistered service: jsonb\n"
    services = dev_agent.get("/v1/agent/services")
    assert services["hclsvc-1"]["Tags"] == ["v1", "extra"]
    assert services["hclsvc-1"]["Port"] == 9000
    assert services["jsonb-1"]["Port"] == 2
    r = waypost("services", "deregister", str(hcl), str(js))
    assert r.out.splitlines() == [f"Deregistered service: {s}" for s in ("hclsvc-1", "jsona", "jsonb-1")]
    assert not {"hclsvc-1", "jsona", "jsonb-1"} & set(dev_agent.get("/v1/agent/services"))


def test_register_errors(waypost: Runner, tmp_path: Path) -> None:
    r = waypost("services", "register")
    assert (r.code, r.err) == (1, "Service registration requires at least one argument or flags.\n")
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    r = waypost("services", "register", str(empty))
    assert r.code == 1
    assert "no service definitions" in r.err
    assert waypost("services", "register", str(tmp_path / "missing.json")).code == 1
    assert waypost("services", "deregister").code == 1
    assert waypost("services", "deregister", "-id=x", "file.json").code == 1
