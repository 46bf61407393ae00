"""The ``tls`` section: blocks inheriting ``tls.defaults``, Consul's flat pre-1.12 keys, and
values checked at load time with the key named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from waypost.config import AgentConfig, ConfigError, load_config


def load(tmp_path: Path, content: str | dict[str, object]) -> AgentConfig:
    path = tmp_path / ("c.hcl" if isinstance(content, str) else "c.json")
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return load_config(["-data-dir", str(tmp_path / "data"), "-config-file", str(path)])


def test_blocks_take_what_they_leave_unset_from_defaults(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """
        tls {
          defaults { ca_file = "/ca.pem" cert_file = "/d.pem" key_file = "/d-key.pem" verify_incoming = true }
          https { cert_file = "/h.pem" key_file = "/h-key.pem" verify_incoming = false }
          internal_rpc { verify_server_hostname = true }
        }
        """,
    )
    https, rpc, store = cfg.tls.https, cfg.tls.internal_rpc, cfg.tls.store
    assert (https.ca_file, https.cert_file, https.key_file, https.verify_incoming) == (
        "/ca.pem", "/h.pem", "/h-key.pem", False,
    )  # fmt: skip
    assert (rpc.ca_file, rpc.cert_file, rpc.verify_incoming, rpc.verify_server_hostname) == (
        "/ca.pem", "/d.pem", True, True,
    )  # fmt: skip
    assert (store.ca_file, store.cert_file) == ("/ca.pem", "/d.pem")
    assert https.tls_min_version == "TLSv1_2"


def test_flat_keys_of_consul_before_1_12_are_read_into_the_section(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        {
            "ca_file": "/ca.pem",
            "cert_file": "/c.pem",
            "key_file": "/k.pem",
            "verify_incoming_https": True,
            "verify_outgoing": True,
            "verify_server_hostname": True,
            "tls_min_version": "tls13",
        },
    )
    assert cfg.tls.defaults.cert_file == "/c.pem"
    assert cfg.tls.https.verify_incoming
    assert not cfg.tls.internal_rpc.verify_incoming
    assert cfg.tls.internal_rpc.verify_outgoing
    assert cfg.tls.internal_rpc.verify_server_hostname
    assert cfg.tls.https.tls_min_version == "TLSv1_3"
    assert not [w for w in cfg.warnings if "cert_file" in w]


def test_new_key_in_the_same_file_wins_over_the_flat_one(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"cert_file": "/old.pem", "tls": {"defaults": {"cert_file": "/new.pem"}}})
    assert cfg.tls.https.cert_file == "/new.pem"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            {"tls": {"defaults": {"tls_min_version": "TLSv9"}}},
            'tls.defaults.tls_min_version: unsupported TLS version "TLSv9"',
        ),
        (
            {"tls": {"https": {"tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_NULL"}}},
            'tls.https.tls_cipher_suites: unsupported cipher suite "TLS_RSA_NULL"',
        ),
        (
            {"tls": {"internal_rpc": {"verify_incoming": "yes"}}},
            "tls.internal_rpc.verify_incoming: expected a boolean",
        ),
        (
            {"tls": {"https": {"verify_server_hostname": True}}},
            "invalid config key tls.https.verify_server_hostname",
        ),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, content: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, content)
    assert message in str(err.value)


def test_grpc_tls_block_is_accepted_and_ignored(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"tls": {"grpc": {"cert_file": "/g.pem"}}})
    assert any("config key tls.grpc is not supported" in w for w in cfg.warnings)


def test_etcd_over_tls_store_url(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"server": True, "store": "etcds://127.0.0.1:2379"})
    assert cfg.store == "etcds://127.0.0.1:2379"
    with pytest.raises(ConfigError, match="etcd store needs at least one endpoint"):
        load(tmp_path, {"server": True, "store": "etcds://"})
