"""Connect's CA endpoints against a real agent: roots, leaves (blocking, renewed), configuration."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store

from etcd_cluster import etcd_available, etcd_cluster
from waypost.connect import ca
from waypost.state import schema
from waypost.store import wire
from waypost.testing import AgentProcess, wait_for

CLUSTER = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    hcl = f'connect {{ ca_config {{ cluster_id = "{CLUSTER}" }} }}'
    with AgentProcess(["-dev", "-node", "ca-node", "-hcl", hcl], log_path=log) as proc:
        # The leader creates the CA just after its election, a moment after start-up.
        wait_for(lambda: _get(proc, "/v1/agent/connect/ca/roots")[2]["Roots"])
        yield proc


def _get(agent: AgentProcess, path: str) -> tuple[int, dict[str, str], Any]:
    status, headers, body = agent.request("GET", path)
    return status, headers, json.loads(body) if status == 200 else body.decode()


def _verify(chain: str, roots: list[str]) -> list[str]:
    leaf, *intermediates = ca.load_certs(chain)
    verifier = PolicyBuilder().store(Store([ca.load_cert(r) for r in roots])).build_client_verifier()
    subjects = verifier.verify(leaf, intermediates).subjects or []
    return [s.value for s in subjects if isinstance(s, x509.UniformResourceIdentifier)]


def _trusted(agent: AgentProcess) -> list[str]:
    return [r["RootCert"] for r in agent.get("/v1/agent/connect/ca/roots")["Roots"]]


def test_roots_have_one_active_root_in_the_configured_trust_domain(agent: AgentProcess) -> None:
    status, headers, roots = _get(agent, "/v1/agent/connect/ca/roots")
    assert status == 200
    assert int(headers["X-Consul-Index"]) > 0
    assert roots["TrustDomain"] == f"{CLUSTER}.consul"
    (root,) = roots["Roots"]
    assert root["ID"] == roots["ActiveRootID"]
    assert root["Active"] is True
    assert root["Name"] == "Consul CA Primary Cert"
    assert (root["PrivateKeyType"], root["PrivateKeyBits"]) == ("ec", 256)
    assert root["ExternalTrustDomain"] == CLUSTER
    assert "SigningKey" not in root
    assert "SigningCert" not in root
    assert root["NotBefore"].endswith("Z")
    assert root["RootCert"].startswith("-----BEGIN CERTIFICATE-----")
    assert agent.get("/v1/connect/ca/roots") == roots
    status, headers, pem = agent.request("GET", "/v1/connect/ca/roots?pem=true")
    assert status == 200
    assert pem.decode() == root["RootCert"]
    assert agent.request("GET", "/v1/connect/ca/roots?pem=T")[2] == pem
    assert agent.get("/v1/connect/ca/roots?pem") == agent.get("/v1/connect/ca/roots?pem=0") == roots
    status, _, body = agent.request("GET", "/v1/connect/ca/roots?pem=yes")
    assert (status, body) == (400, b"The 'pem' query parameter must be a boolean value")


def test_configuration_shows_consuls_defaults(agent: AgentProcess) -> None:
    config = agent.get("/v1/connect/ca/configuration")
    assert config["Provider"] == "consul"
    assert config["Config"] == {"LeafCertTTL": "72h", "IntermediateCertTTL": "8760h", "RootCertTTL": "87600h"}
    assert "ClusterID" not in config
    assert "cluster_id" not in config["Config"]


def test_leaf_is_a_spiffe_certificate_with_its_key(agent: AgentProcess) -> None:
    status, headers, leaf = _get(agent, "/v1/agent/connect/ca/leaf/web")
    assert status == 200
    uri = f"spiffe://{CLUSTER}.consul/ns/default/dc/dc1/svc/web"
    assert leaf["Service"] == "web"
    assert leaf["ServiceURI"] == uri
    assert _verify(leaf["CertPEM"], _trusted(agent)) == [uri]
    key = serialization.load_pem_private_key(leaf["PrivateKeyPEM"].encode(), None)
    cert = ca.load_certs(leaf["CertPEM"])[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == cert.public_key().public_bytes(
        serialization.Encoding.DER, spki
    )
    assert int(headers["X-Consul-Index"]) == leaf["ModifyIndex"]
    again = agent.get("/v1/agent/connect/ca/leaf/web")
    assert again["SerialNumber"] == leaf["SerialNumber"]  # cached, not re-issued


def test_a_blocking_leaf_read_times_out_with_the_same_leaf(agent: AgentProcess) -> None:
    _, headers, leaf = _get(agent, "/v1/agent/connect/ca/leaf/web")
    index = headers["X-Consul-Index"]
    _, again_headers, again = _get(agent, f"/v1/agent/connect/ca/leaf/web?index={index}&wait=300ms")
    assert again["SerialNumber"] == leaf["SerialNumber"]
    assert again_headers["X-Consul-Index"] == index


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"Provider": "consul", "Config": {"LeafCertTTL": "10m"}}',
            "leaf cert TTL must be greater or equal",
        ),
        (b'{"Provider": "vault", "Config": {}}', 'unknown CA provider "vault"'),
        (b'{"Provider": "consul", "Config": []}', "Config: expected an object"),
        (b'{"Provider": 7}', "Provider: expected a string"),
        (b"[1]", "expected a JSON object"),
        (b"{", "Request decode failed"),
    ],
)
def test_bad_configuration_is_a_400_naming_the_problem(
    agent: AgentProcess, body: bytes, message: str
) -> None:
    status, _, answer = agent.request("PUT", "/v1/connect/ca/configuration", body)
    assert status == 400
    assert message in answer.decode()


def test_bad_leaf_parameters_are_400s(agent: AgentProcess) -> None:
    assert agent.request("GET", "/v1/agent/connect/ca/leaf/web?index=x")[0] == 400
    assert agent.request("GET", "/v1/agent/connect/ca/leaf/web?index=1&wait=soon")[0] == 400


def test_rotation_cross_signs_and_renews_the_leaf(agent: AgentProcess) -> None:
    """Runs after the reads above: it changes the active root."""
    _, headers, old_leaf = _get(agent, "/v1/agent/connect/ca/leaf/web")
    old_root_id = agent.get("/v1/agent/connect/ca/roots")["ActiveRootID"]
    agent.put("/v1/connect/ca/configuration", {"Provider": "consul", "Config": {"LeafCertTTL": "24h"}})
    roots = agent.get("/v1/agent/connect/ca/roots")
    assert roots["ActiveRootID"] != old_root_id
    assert [r["Active"] for r in roots["Roots"]] == [False, True]
    assert len(roots["Roots"][1]["IntermediateCerts"]) == 1
    index = headers["X-Consul-Index"]
    _, new_headers, new_leaf = _get(agent, f"/v1/agent/connect/ca/leaf/web?index={index}&wait=10s")
    assert int(new_headers["X-Consul-Index"]) > int(index)
    assert new_leaf["SerialNumber"] != old_leaf["SerialNumber"]
    old_root = roots["Roots"][0]["RootCert"]
    assert _verify(new_leaf["CertPEM"], [old_root])  # a peer that knows only the old root
    assert _verify(old_leaf["CertPEM"], _trusted(agent))  # old leaves stay valid
    assert agent.get("/v1/connect/ca/configuration")["Config"]["LeafCertTTL"] == "24h"


def test_leaf_is_renewed_before_it_expires(agent: AgentProcess) -> None:
    config = {"LeafCertTTL": "4s", "IntermediateCertTTL": "8760h", "SkipValidate": True}
    agent.put("/v1/connect/ca/configuration", {"Provider": "consul", "Config": config})
    _, headers, first = _get(agent, "/v1/agent/connect/ca/leaf/api")
    index = headers["X-Consul-Index"]
    _, _, renewed = _get(agent, f"/v1/agent/connect/ca/leaf/api?index={index}&wait=10s")
    assert renewed["SerialNumber"] != first["SerialNumber"]
    # Issued (a minute after its backdated start, to the second) while the first was valid.
    renewed_at = ca.load_certs(renewed["CertPEM"])[0].not_valid_before_utc + dt.timedelta(minutes=1)
    assert renewed_at <= dt.datetime.fromisoformat(first["ValidBefore"])


def test_connect_disabled_answers_consuls_message(tmp_path: Path) -> None:
    with AgentProcess(["-dev", "-hcl", "connect { enabled = false }"], log_path=tmp_path / "a.log") as proc:
        for path in (
            "/v1/agent/connect/ca/roots",
            "/v1/agent/connect/ca/leaf/web",
            "/v1/connect/ca/configuration",
        ):
            status, _, body = proc.request("GET", path)
            assert (status, body) == (400, b"Connect must be enabled in order to use this endpoint")


def test_a_bad_ca_config_stops_start_up_naming_it(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    proc = AgentProcess(["-dev", "-hcl", 'connect { ca_config { leaf_cert_ttl = "10m" } }'], log_path=log)
    with pytest.raises(RuntimeError, match="exited"):
        proc.start()
    assert "connect.ca_config: leaf cert TTL must be greater or equal than 1h0m0s" in log.read_text()


def _store_read(server: AgentProcess, path: str) -> bytes:
    """What a client agent is sent: a read of the server's agent-to-server API."""
    with urllib.request.urlopen(
        f"http://{server.server_address}/v1/internal/store{path}", timeout=30
    ) as resp:
        body: bytes = resp.read()
        return body


def _snapshot_text(agent: AgentProcess) -> bytes:
    status, _, body = agent.request("GET", "/v1/snapshot")
    assert status == 200
    return gzip.decompress(body)


def test_a_client_agent_is_never_sent_the_ca_keys_and_asks_a_server(tmp_path: Path) -> None:
    """A client agent's leaves are signed, and its configuration changes applied, by a
    server; what it is sent of the CA (reads, transaction reads, watch events) has no key."""
    server_args = [
        "-server",
        "-bootstrap-expect",
        "1",
        "-data-dir",
        str(tmp_path / "s"),
        "-bind",
        "127.0.0.1",
    ]
    with AgentProcess([*server_args, "-node", "hub"], log_path=tmp_path / "s.log") as server:
        client_args = ["-data-dir", str(tmp_path / "c"), "-bind", "127.0.0.1", "-node", "edge"]
        with AgentProcess(
            [*client_args, "-retry-join", server.server_address], log_path=tmp_path / "c.log"
        ) as client:
            roots = client.get("/v1/agent/connect/ca/roots")
            assert roots == server.get("/v1/agent/connect/ca/roots")
            leaf = client.get("/v1/agent/connect/ca/leaf/edge-svc")
            assert leaf["ServiceURI"] == f"spiffe://{roots['TrustDomain']}/ns/default/dc/dc1/svc/edge-svc"
            assert _verify(leaf["CertPEM"], [r["RootCert"] for r in roots["Roots"]]) == [leaf["ServiceURI"]]
            # The server routes are the agent-to-server API's only: the public port has none.
            assert server.request("POST", "/v1/internal/store/connect-sign", b"{}")[0] == 404
            assert server.request("GET", "/v1/internal/store/connect-ca-configuration")[0] == 404

            # The server holds the key; nothing a client reads of the store carries it.
            assert b"PRIVATE KEY" in _snapshot_text(server)
            record = wire.decode_kv(_store_read(server, "/get?key=connect/ca/state"))
            assert record is not None
            ca_record = schema.CONNECT_CA.decode(record.value, 0, 0)
            assert ca_record.Roots
            assert all(r.SigningKey == "" for r in ca_record.Roots)
            assert b"PRIVATE KEY" not in _store_read(server, "/range?prefix=connect/ca/")
            assert b"PRIVATE KEY" not in _store_read(server, "/range?prefix=")
            revision = wire.decode_number(_store_read(server, "/revision"))

            # A configuration change through the client is applied by a server: it rotates.
            assert client.get("/v1/connect/ca/configuration") == server.get("/v1/connect/ca/configuration")
            client.put(
                "/v1/connect/ca/configuration", {"Provider": "consul", "Config": {"LeafCertTTL": "24h"}}
            )
            rotated = server.get("/v1/agent/connect/ca/roots")
            assert rotated["ActiveRootID"] != roots["ActiveRootID"]
            wait_for(lambda: client.get("/v1/agent/connect/ca/roots") == rotated)
            assert client.get("/v1/connect/ca/configuration")["Config"]["LeafCertTTL"] == "24h"
            status, _, answer = client.request(
                "PUT", "/v1/connect/ca/configuration", b'{"Provider": "vault", "Config": {}}'
            )
            assert (status, answer) == (400, b'unknown CA provider "vault"')
            events = _store_read(server, f"/watch?from={revision + 1}&wait=1s")
            assert b"connect/ca/state" in events
            assert b"PRIVATE KEY" not in events
            renewed = client.get("/v1/agent/connect/ca/leaf/edge-svc")
            assert _verify(renewed["CertPEM"], [rotated["Roots"][-1]["RootCert"]]) == [leaf["ServiceURI"]]

            # A snapshot saved and restored through the client leaves the servers able to sign.
            saved = client.request("GET", "/v1/snapshot")[2]
            assert client.request("PUT", "/v1/snapshot", saved)[0] == 200
            assert b"PRIVATE KEY" in _snapshot_text(server)
            fresh = client.get("/v1/agent/connect/ca/leaf/after-restore")
            assert _verify(fresh["CertPEM"], [rotated["Roots"][-1]["RootCert"]]) == [fresh["ServiceURI"]]


@pytest.mark.etcd
@pytest.mark.skipif(not etcd_available(), reason="etcd is not installed")
def test_two_servers_on_etcd_share_one_ca(tmp_path: Path) -> None:
    """The second server finds the CA the first created and serves it (its own create is
    guarded to lose), so a leaf from either verifies under the other's roots, and a rotation
    through one is what the other serves."""
    (tmp_path / "etcd").mkdir()
    with etcd_cluster(tmp_path / "etcd") as etcd:

        def server(name: str) -> AgentProcess:
            args = ["-server", "-node", name, "-bind", "127.0.0.1", "-data-dir", str(tmp_path / name)]
            return AgentProcess([*args, "-store", etcd.url], log_path=tmp_path / f"{name}.log")

        with server("one") as one, server("two") as two:
            roots = one.get("/v1/agent/connect/ca/roots")
            assert two.get("/v1/agent/connect/ca/roots") == roots
            trusted = [r["RootCert"] for r in roots["Roots"]]
            for agent in (one, two):
                leaf = agent.get("/v1/agent/connect/ca/leaf/api")
                assert _verify(leaf["CertPEM"], trusted) == [leaf["ServiceURI"]]
            one.put("/v1/connect/ca/configuration", {"Provider": "consul", "Config": {"LeafCertTTL": "12h"}})
            wait_for(lambda: two.get("/v1/agent/connect/ca/roots")["ActiveRootID"] != roots["ActiveRootID"])
            assert two.get("/v1/connect/ca/configuration")["Config"]["LeafCertTTL"] == "12h"
