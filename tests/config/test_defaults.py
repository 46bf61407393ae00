"""Defaults, -dev defaults, settings derived from others, and reloading."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from waypost.config import AgentConfig, load_config, reload_config


def test_consul_defaults(tmp_path: Path) -> None:
    cfg = load_config(["-data-dir", str(tmp_path)])
    assert (cfg.datacenter, cfg.primary_datacenter, cfg.domain) == ("dc1", "dc1", "consul.")
    assert cfg.node_name == socket.gethostname()
    assert uuid.UUID(cfg.node_id)
    assert (cfg.client_addr, cfg.bind_addr, cfg.log_level) == ("127.0.0.1", "0.0.0.0", "info")
    assert cfg.advertise_addr
    assert cfg.advertise_addr == cfg.advertise_addr_wan
    ports = cfg.ports
    assert (ports.dns, ports.http, ports.https, ports.grpc, ports.grpc_tls) == (8600, 8500, -1, -1, -1)
    assert (ports.serf_lan, ports.serf_wan, ports.server) == (8301, 8302, 8300)
    dns = cfg.dns_config
    assert dns.allow_stale
    assert str(dns.max_stale) == "87600h"
    assert dns.udp_answer_limit == 3
    assert (dns.soa.refresh, dns.soa.retry, dns.soa.expire, dns.soa.min_ttl) == (3600, 600, 86400, 0)
    assert dns.recursor_timeout.seconds == 2
    assert dns.recursor_strategy == "sequential"
    assert dns.enable_additional_node_meta_txt
    assert cfg.retry_interval.seconds == 30
    assert cfg.ae_interval.seconds == 60
    assert (cfg.limits.http_max_conns_per_client, cfg.limits.kv_max_value_size) == (200, 524288)
    assert cfg.limits.txn_max_req_len == 524288
    assert cfg.check_output_max_size == 4096
    assert (cfg.acl.enabled, cfg.acl.default_policy, cfg.acl.down_policy) == (False, "allow", "extend-cache")
    assert not cfg.server
    assert not cfg.dev
    assert not cfg.ui_config.enabled
    # Clients leave on SIGTERM and have no local store.
    assert cfg.leave_on_terminate
    assert not cfg.skip_leave_on_interrupt
    assert cfg.store == ""


def test_dev_defaults() -> None:
    cfg = load_config(["-dev"])
    assert cfg.dev
    assert cfg.server
    assert cfg.bootstrap
    assert (cfg.bind_addr, cfg.client_addr, cfg.advertise_addr) == ("127.0.0.1", "127.0.0.1", "127.0.0.1")
    assert cfg.ui_config.enabled
    assert cfg.connect.enabled
    assert cfg.node_name == socket.gethostname()
    assert cfg.ports.grpc == 8502
    assert cfg.ports.http == 8500
    assert cfg.store == "memory://"
    assert cfg.performance.raft_multiplier == 1
    assert cfg.disable_anonymous_signature
    assert cfg.enable_debug
    assert cfg.log_level == "debug"
    assert not cfg.leave_on_terminate
    assert cfg.skip_leave_on_interrupt
    assert cfg.liveness.heartbeat_interval.seconds < 1


def test_dev_defaults_yield_to_files_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"bind_addr": "127.0.0.5", "store": "sqlite:///var/lib/waypost/x.db"}')
    cfg = load_config(["-dev", "-config-file", str(path), "-ui=false", "-server=false"])
    assert cfg.bind_addr == "127.0.0.5"
    assert cfg.store == "sqlite:///var/lib/waypost/x.db"
    assert not cfg.ui_config.enabled
    assert not cfg.server
    assert not cfg.bootstrap


def test_server_with_data_dir_stores_in_sqlite(tmp_path: Path) -> None:
    cfg = load_config(["-server", "-bootstrap-expect=1", "-data-dir", str(tmp_path)])
    assert cfg.store == f"sqlite://{tmp_path}/store.db"
    assert not cfg.bootstrap


def test_explicit_settings_beat_derived_ones(tmp_path: Path) -> None:
    cfg = load_config(
        [
            "-server",
            f"-data-dir={tmp_path}",
            "-bind=10.1.2.3",
            "-hcl",
            'leave_on_terminate = true\nskip_leave_on_interrupt = false\nprimary_datacenter = "main"',
            "-hcl",
            "enable_script_checks = true\nenable_local_script_checks = false",
        ]
    )
    assert cfg.advertise_addr == "10.1.2.3"
    assert cfg.leave_on_terminate
    assert not cfg.skip_leave_on_interrupt
    assert cfg.primary_datacenter == "main"
    assert cfg.enable_script_checks
    assert not cfg.enable_local_script_checks


def test_node_id_is_persisted_in_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_config(["-data-dir", str(data_dir)])
    assert (data_dir / "node-id").read_text() == first.node_id
    assert load_config(["-data-dir", str(data_dir)]).node_id == first.node_id


def test_explicit_node_id_wins_over_the_stored_one(tmp_path: Path) -> None:
    (tmp_path / "node-id").write_text("11111111-2222-3333-4444-555555555555\n")
    assert load_config(["-data-dir", str(tmp_path)]).node_id == "11111111-2222-3333-4444-555555555555"
    explicit = "aaaaaaaa-2222-3333-4444-555555555555"
    assert load_config(["-data-dir", str(tmp_path), "-node-id", explicit]).node_id == explicit


def test_reload_rereads_the_same_files_and_keeps_the_node_id(tmp_path: Path) -> None:
    path = tmp_path / "agent.hcl"
    path.write_text('log_level = "info"\nservice { name = "web" }\n')
    cfg = load_config(["-dev", "-config-file", str(path)])
    path.write_text('log_level = "warn"\nservice { name = "web" }\nservice { name = "api" }\n')
    reloaded = reload_config(cfg)
    assert isinstance(reloaded, AgentConfig)
    assert reloaded.log_level == "warn"
    assert [s["name"] for s in reloaded.services] == ["web", "api"]
    assert reloaded.node_id == cfg.node_id
    assert reloaded.argv == cfg.argv


def test_only_a_default_heartbeat_interval_scales_with_the_cluster(tmp_path: Path) -> None:
    assert load_config(["-data-dir", str(tmp_path)]).liveness.heartbeat_scaled
    path = tmp_path / "c.json"
    path.write_text('{"liveness": {"failure_timeout": "20s"}}')
    assert load_config(["-data-dir", str(tmp_path), "-config-file", str(path)]).liveness.heartbeat_scaled
    path.write_text('{"liveness": {"heartbeat_interval": "1s"}}')
    assert not load_config(["-data-dir", str(tmp_path), "-config-file", str(path)]).liveness.heartbeat_scaled
