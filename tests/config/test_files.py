"""Config files, directories and -hcl snippets, and the order they are merged in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from waypost.config import AgentConfig, load_config

#: The example agent config of the project's Consul API notes, written as Consul's HCL 1.
CONSUL_EXAMPLE_HCL = """
datacenter = "dc1"          # default dc1
data_dir = "{data_dir}"
node_name = "foobar"        # default hostname
server = true               # default false
bootstrap_expect = 3        # default 0
bind_addr = "0.0.0.0"       # default (dev 127.0.0.1)
client_addr = "127.0.0.1"   # default; HTTP/DNS bind
addresses {{ http = "0.0.0.0" }}
ports {{ dns = 8600  http = 8500  https = -1  grpc = -1  serf_lan = 8301  serf_wan = 8302  server = 8300 }}
retry_join = ["consul-server2", "consul-server3"]   # retry_interval 30s
encrypt = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
ui_config {{ enabled = true }}
acl {{ enabled = true  default_policy = "deny"  down_policy = "extend-cache"  enable_token_persistence = true
      tokens {{ initial_management = "b1gs33cr3t"  agent = ""  default = ""  dns = "" }} }}   # <1.11: tokens.master
dns_config {{ allow_stale = true  only_passing = false  enable_truncate = false  udp_answer_limit = 3  a_record_limit = 0  service_ttl {{ "*" = "5s" }} }}
recursors = ["1.1.1.1"]
enable_local_script_checks = true
service {{ id = "dns"  name = "dns"  tags = ["primary"]  port = 8600
  check {{ id = "dns"  tcp = "localhost:8600"  interval = "10s"  timeout = "1s" }} }}
"""  # noqa: E501


def write(path: Path, content: str | dict[str, object]) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def load_files(*paths: str, extra: tuple[str, ...] = ()) -> AgentConfig:
    argv = ["-dev"]
    for p in paths:
        argv += ["-config-file", p]
    return load_config([*argv, *extra])


def test_consul_example_hcl_loads(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.hcl", CONSUL_EXAMPLE_HCL.format(data_dir=tmp_path / "data"))
    cfg = load_config(["-config-file", path])
    assert (cfg.datacenter, cfg.node_name, cfg.server, cfg.bootstrap_expect) == ("dc1", "foobar", True, 3)
    assert cfg.addresses.http == "0.0.0.0"
    assert cfg.ports.https == -1
    assert cfg.ports.server == 8300
    assert cfg.retry_join == ("consul-server2", "consul-server3")
    assert cfg.ui_config.enabled
    assert cfg.acl.enabled
    assert cfg.acl.default_policy == "deny"
    assert cfg.acl.enable_token_persistence
    assert cfg.acl.tokens.initial_management == "b1gs33cr3t"
    assert cfg.dns_config.service_ttl["*"].seconds == 5
    assert cfg.recursors == ("1.1.1.1",)
    assert cfg.enable_local_script_checks
    assert not cfg.enable_script_checks
    assert cfg.services == (
        {
            "id": "dns",
            "name": "dns",
            "tags": ["primary"],
            "port": 8600,
            "check": {"id": "dns", "tcp": "localhost:8600", "interval": "10s", "timeout": "1s"},
        },
    )
    assert cfg.warnings == ()


def test_py_consul_local_config_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path / "local.json",
        {
            "ports": {"https": -1, "dns": -1, "grpc_tls": -1},
            "performance": {"raft_multiplier": 1},
            "enable_script_checks": True,
        },
    )
    cfg = load_config(["-dev", "-client=0.0.0.0", "-log-level", "trace", "-config-file", path])
    assert (cfg.ports.https, cfg.ports.dns, cfg.ports.grpc_tls, cfg.ports.http) == (-1, -1, -1, 8500)
    assert cfg.performance.raft_multiplier == 1
    assert cfg.enable_script_checks
    assert cfg.client_addr == "0.0.0.0"
    assert cfg.log_level == "trace"


def test_later_files_override_and_flags_override_files(tmp_path: Path) -> None:
    first = write(tmp_path / "1.json", {"datacenter": "one", "node_name": "a", "ports": {"http": 1111}})
    second = write(tmp_path / "2.hcl", 'datacenter = "two"\nports { dns = 2222 }\n')
    cfg = load_files(first, second, extra=("-node", "flagged"))
    assert cfg.datacenter == "two"
    assert cfg.node_name == "flagged"
    assert (cfg.ports.http, cfg.ports.dns) == (1111, 2222)


def test_hcl_snippets_override_flags(tmp_path: Path) -> None:
    cfg = load_config(
        ["-dev", "-node", "flagged", "-hcl", 'node_name = "snippet"', "-hcl", "ports { http = 1 }"]
    )
    assert cfg.node_name == "snippet"
    assert cfg.ports.http == 1


def test_lists_concatenate_flag_lists_first_and_maps_merge(tmp_path: Path) -> None:
    first = write(tmp_path / "1.json", {"retry_join": ["b"], "node_meta": {"a": "1", "b": "1"}})
    second = write(tmp_path / "2.json", {"retry_join": ["c"], "node_meta": {"b": "2"}})
    cfg = load_files(first, second, extra=("-retry-join", "a", "-node-meta", "c:3"))
    assert cfg.retry_join == ("a", "b", "c")
    assert cfg.node_meta == {"a": "1", "b": "2", "c": "3"}


def test_config_dir_reads_json_and_hcl_in_name_order(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    write(conf / "b.hcl", 'node_name = "from-b"\nservice { name = "web" }\n')
    write(conf / "a.json", {"node_name": "from-a", "datacenter": "dca", "service": {"name": "api"}})
    write(conf / "c.txt", "not config")
    (conf / "sub").mkdir()
    write(conf / "sub" / "z.json", {"node_name": "from-subdir"})
    cfg = load_config(["-dev", "-config-dir", str(conf)])
    assert (cfg.node_name, cfg.datacenter) == ("from-b", "dca")
    assert [s["name"] for s in cfg.services] == ["api", "web"]
    assert any("skipping file" in w and "c.txt" in w for w in cfg.warnings)


def test_config_format_overrides_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.conf", 'node_name = "hcl-in-conf"')
    assert load_config(["-dev", "-config-format=hcl", "-config-file", path]).node_name == "hcl-in-conf"


def test_services_and_checks_accumulate_in_json(tmp_path: Path) -> None:
    first = write(
        tmp_path / "1.json",
        {
            "service": {"name": "a"},
            "services": [{"name": "b"}, {"name": "c"}],
            "check": {"id": "x", "ttl": "5s"},
        },
    )
    second = write(tmp_path / "2.json", {"services": [{"Name": "d"}], "checks": [{"id": "y"}, {"id": "z"}]})
    cfg = load_files(first, second)
    assert [s.get("name", s.get("Name")) for s in cfg.services] == ["a", "b", "c", "d"]
    assert [c["id"] for c in cfg.checks] == ["x", "y", "z"]


def test_services_and_checks_accumulate_in_hcl(tmp_path: Path) -> None:
    path = write(
        tmp_path / "svc.hcl",
        """
        service {
          name = "web"
          port = 80
          meta { version = "1" }
          checks = [{ http = "http://localhost/health", interval = "10s" }]
        }
        service {
          name = "api"
          checks { ttl = "30s" }
          check { id = "api-alive"  ttl = "5s" }
        }
        services {
          name = "db"
        }
        check { id = "disk"  args = ["/bin/true"]  interval = "1m" }
        check { id = "mem"  args = ["/bin/true"]  interval = "1m" }
        checks = [{ id = "load", ttl = "1m" }]
        """,
    )
    cfg = load_files(path)
    web, api, db = cfg.services
    assert web == {
        "name": "web",
        "port": 80,
        "meta": {"version": "1"},
        "checks": [{"http": "http://localhost/health", "interval": "10s"}],
    }
    assert api == {"name": "api", "checks": [{"ttl": "30s"}], "check": {"id": "api-alive", "ttl": "5s"}}
    assert db == {"name": "db"}
    assert sorted(c["id"] for c in cfg.checks) == ["disk", "load", "mem"]


def test_hcl_strings_are_unescaped_and_quoted_keys_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path / "q.hcl",
        'node_meta { "rack-id" = "r\\"1"  plain = "a\\\\b" }\n'
        "# a comment with \"quoted\" = 'text'\n"
        'node_name = "x" // trailing\n'
        '/* block "k" = 1 */\n'
        'dns_config { service_ttl = { "web*" = "1s", "*" = "2s" } }\n',
    )
    cfg = load_files(path)
    assert cfg.node_meta == {"rack-id": 'r"1', "plain": "a\\b"}
    assert {k: str(v) for k, v in cfg.dns_config.service_ttl.items()} == {"web*": "1s", "*": "2s"}


def test_renamed_keys_are_read_into_their_new_names(tmp_path: Path) -> None:
    old = write(
        tmp_path / "old.json",
        {
            "ui": True,
            "acl_datacenter": "dc1",
            "acl": {"tokens": {"master": "m", "agent_master": "am"}},
            "acl_default_policy": "deny",
        },
    )
    cfg = load_files(old)
    assert cfg.ui_config.enabled
    assert cfg.primary_datacenter == "dc1"
    assert (cfg.acl.tokens.initial_management, cfg.acl.tokens.agent_recovery) == ("m", "am")
    assert cfg.acl.default_policy == "deny"
    both = write(tmp_path / "both.json", {"acl": {"tokens": {"master": "old", "initial_management": "new"}}})
    assert load_files(both).acl.tokens.initial_management == "new"


def test_keys_consul_knows_are_accepted_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tls.json",
        {
            "verify_incoming": True,
            "tls": {"defaults": {"ca_file": "/ca.pem"}},
            "telemetry": {"prometheus_retention_time": "30s"},
            "limits": {"rpc_rate": 100},
        },
    )
    cfg = load_files(path)
    assert cfg.tls.https.verify_incoming
    assert cfg.tls.https.ca_file == "/ca.pem"
    assert any("config key telemetry " in w for w in cfg.warnings)
    assert any("config key limits.rpc_rate " in w for w in cfg.warnings)


def test_null_leaves_a_setting_unset(tmp_path: Path) -> None:
    path = write(tmp_path / "n.json", {"datacenter": None, "ports": {"http": None}})
    cfg = load_files(path)
    assert (cfg.datacenter, cfg.ports.http) == ("dc1", 8500)


@pytest.mark.parametrize("number", [8501, 8501.0])
def test_integral_floats_are_integers(tmp_path: Path, number: float) -> None:
    assert load_files(write(tmp_path / "p.json", {"ports": {"http": number}})).ports.http == 8501
