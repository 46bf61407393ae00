"""Configs written by automation: HashiCorp's API test harness (``sdk/testutil``) and the like.

``HARNESS_DEFAULT`` is byte for byte what ``NewTestServerConfigT`` writes with no
callback when ``consul version`` answers 1.14 or later (``defaultServerConfig``
marshalled by Go: ``segments`` null, ``acl`` an object even when empty, every
listener port set, ``version`` echoed back). ``harness_every_key`` sets every
key that ``TestServerConfig`` can write, across sdk releases, to a real value.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from waypost.config import ConfigError, check_config, load_config
from waypost.testing import AgentProcess, wait_for

NODE_ID = "0b1ae5c4-2f3a-4d5e-8f90-123456789abc"


def harness_default(data_dir: Path) -> dict[str, Any]:
    return {
        "node_name": f"node-{NODE_ID}",
        "node_id": NODE_ID,
        "performance": {"raft_multiplier": 1},
        "bootstrap": True,
        "server": True,
        "data_dir": str(data_dir),
        "segments": None,
        "disable_update_check": True,
        "log_level": "debug",
        "bind_addr": "127.0.0.1",
        "addresses": {},
        "ports": {
            "dns": 18600,
            "http": 18500,
            "https": 18501,
            "serf_lan": 18301,
            "serf_wan": 18302,
            "server": 18300,
            "grpc": 18502,
            "grpc_tls": 18503,
        },
        "acl": {"tokens": {}},
        "connect": {"ca_config": {"cluster_id": "11111111-2222-3333-4444-555555555555"}, "enabled": True},
        "skip_leave_on_interrupt": True,
        "peering": {"enabled": True},
        "version": "1.21.0",
    }


def harness_every_key(data_dir: Path) -> dict[str, Any]:
    """Every TestServerConfig key; a callback setting cert_file would not also leave the TLS ports on."""
    config = harness_default(data_dir)
    config["ports"].update(https=-1, grpc_tls=-1, proxy_min_port=20000, proxy_max_port=20255)
    config.update(
        node_meta={"env": "ci"},
        locality={"region": "us-east-1", "zone": "us-east-1a"},
        partition="default",
        retry_join=["127.0.0.1:18301"],
        datacenter="dc1",
        segments=[{"name": "alpha", "bind": "127.0.0.1", "port": 18303, "advertise": "127.0.0.1"}],
        addresses={"http": "127.0.0.1"},
        raft_protocol=3,
        acl_datacenter="dc1",
        primary_datacenter="dc1",
        acl_default_policy="deny",
        acl_master_token="root",
        acl={
            "enabled": True,
            "enable_token_replication": True,
            "policy_ttl": "30s",
            "token_ttl": "30s",
            "down_policy": "extend-cache",
            "default_policy": "deny",
            "enable_key_list_policy": True,
            "tokens": {
                "replication": "r",
                "default": "d",
                "agent": "a",
                "master": "root",
                "agent_master": "towel",
            },
            "disabled_ttl": "10s",
        },
        encrypt="pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
        ca_file="/certs/ca.pem",
        cert_file="/certs/agent.pem",
        key_file="/certs/agent-key.pem",
        verify_incoming=True,
        verify_incoming_rpc=True,
        verify_incoming_https=True,
        verify_outgoing=True,
        enable_script_checks=True,
        enable_debug=True,
        autopilot={"server_stabilization_time": "1s"},
        audit={"enabled": True},
        experiments=["resource-apis"],
    )
    return config


def write(path: Path, config: dict[str, Any]) -> str:
    path.write_text(json.dumps(config))
    return str(path)


def test_harness_default_config_loads_with_warnings_naming_each_ignored_key(tmp_path: Path) -> None:
    path = write(tmp_path / "config.json", harness_default(tmp_path / "data"))
    cfg = load_config(["-config-file", path])
    assert (cfg.node_id, cfg.node_name) == (NODE_ID, f"node-{NODE_ID}")
    assert cfg.server
    assert cfg.bootstrap
    assert cfg.skip_leave_on_interrupt
    assert (cfg.ports.http, cfg.ports.dns) == (18500, 18600)
    assert cfg.performance.raft_multiplier == 1
    ignored = {w.split("config key ")[1].split(" ")[0] for w in cfg.warnings if "config key" in w}
    assert ignored == {"peering", "version"}
    idle = sorted(w.split(" = ")[0] for w in cfg.warnings if "nothing listens" in w)
    assert idle == ["ports.grpc", "ports.grpc_tls", "ports.https"]


def test_every_key_the_harness_can_write_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "config.json", harness_every_key(tmp_path / "data"))
    cfg = load_config(["-config-file", path])
    assert cfg.acl.enabled
    assert cfg.acl.default_policy == "deny"
    assert (cfg.acl.tokens.initial_management, cfg.acl.tokens.agent_recovery) == ("root", "towel")
    assert (cfg.acl.tokens.replication, cfg.acl.tokens.default, cfg.acl.tokens.agent) == ("r", "d", "a")
    assert cfg.node_meta == {"env": "ci"}
    assert cfg.retry_join == ("127.0.0.1:18301",)
    assert cfg.addresses.http == "127.0.0.1"
    assert cfg.enable_script_checks
    assert cfg.enable_debug
    for key in ("locality", "partition", "segments", "raft_protocol", "audit"):
        assert any(f"config key {key} is not supported" in w for w in cfg.warnings), key
    # The flat TLS keys of Consul before 1.12 land in the tls section.
    assert (cfg.tls.https.ca_file, cfg.tls.https.cert_file) == ("/certs/ca.pem", "/certs/agent.pem")
    assert cfg.tls.https.verify_incoming
    assert cfg.tls.internal_rpc.verify_incoming
    assert cfg.tls.internal_rpc.verify_outgoing


def test_pinned_node_id_with_a_data_dir_that_does_not_exist_yet(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "data"
    cfg = load_config(["-config-file", write(tmp_path / "config.json", harness_default(data_dir))])
    assert data_dir.is_dir()
    assert cfg.node_id == NODE_ID
    # A pinned ID is the configuration's, not the data directory's.
    assert not (data_dir / "node-id").exists()
    assert cfg.store == f"sqlite://{data_dir}/store.db"


def test_data_dir_that_cannot_be_created_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    data_dir = tmp_path / "file" / "data"
    with pytest.raises(ConfigError, match=f"failed to create data_dir {data_dir}: "):
        load_config(["-data-dir", str(data_dir), "-node-id", NODE_ID])


def test_check_config_creates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = harness_default(data_dir)
    del config["node_id"]
    cfg = check_config([write(tmp_path / "config.json", config)])
    assert not data_dir.exists()
    assert cfg.node_id == ""


def test_an_agent_starts_from_the_harness_config(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    config = harness_default(data_dir)
    node_id = str(uuid.uuid4())
    config.update(node_id=node_id, node_name=f"node-{node_id}")
    path = write(tmp_path / "config.json", config)
    # AgentProcess adds free HTTP and DNS ports as flags, which win over the file's.
    with AgentProcess(["-config-file", path], log_path=tmp_path / "agent.log") as agent:
        me = agent.get("/v1/agent/self")["Config"]
        assert (me["NodeID"], me["NodeName"], me["Server"]) == (node_id, f"node-{node_id}", True)
        # The agent's own sync can write its node before the leader's reconcile adds serfHealth.
        wait_for(lambda: agent.get(f"/v1/health/node/node-{node_id}"))
        nodes = agent.get("/v1/catalog/nodes")
        assert [(n["ID"], n["Node"]) for n in nodes] == [(node_id, f"node-{node_id}")]
        checks = agent.get(f"/v1/health/node/node-{node_id}")
        assert [c["CheckID"] for c in checks] == ["serfHealth"]
    assert (data_dir / "store.db").exists()
    log = (tmp_path / "agent.log").read_text()
    assert "Traceback" not in log
    assert "config key peering is not supported by waypost and is ignored" in log
    assert "ports.https = 18501: no TLS certificate is configured" in log
