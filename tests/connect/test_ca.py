"""The built-in CA without I/O: roots, leaves, chains across a rotation, configuration checks."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from waypost.connect import ca, ca_store
from waypost.connect.ca_config import CAConfigError, normalise, settings

CLUSTER = "11111111-2222-3333-4444-555555555555"
DOMAIN = ca.trust_domain(CLUSTER)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _verify(leaf_chain: str, *roots: str, at: dt.datetime = NOW) -> list[str]:
    """The URI SANs a strict RFC 5280 verifier accepts for ``leaf_chain`` under ``roots``."""
    leaf, *intermediates = ca.load_certs(leaf_chain)
    store = Store([ca.load_cert(r) for r in roots])
    verified = PolicyBuilder().store(store).time(at).build_client_verifier().verify(leaf, intermediates)
    return [s.value for s in verified.subjects or [] if isinstance(s, x509.UniformResourceIdentifier)]


def _csr(service: str = "web", domain: str = DOMAIN) -> str:
    return ca.make_csr(ca.generate_key(), ca.spiffe_service(domain, "dc1", service), service)


def test_spiffe_ids_follow_consul() -> None:
    assert f"{CLUSTER}.consul" == DOMAIN
    assert ca.spiffe_service(DOMAIN, "dc1", "web") == f"spiffe://{CLUSTER}.consul/ns/default/dc/dc1/svc/web"
    assert ca.ca_common_name("abcd", DOMAIN) == "pri-abcd.consul.ca.11111111.consul"


def test_root_is_a_self_signed_ec_p256_ca_for_the_trust_domain() -> None:
    key = ca.generate_key()
    pem = ca.new_root(key, DOMAIN, serial=7, ttl=dt.timedelta(days=3650), now=NOW)
    cert = ca.load_cert(pem)
    info = ca.root_info(pem)
    assert (info.key_type, info.key_bits, info.serial) == ("ec", 256, 7)
    assert cert.issuer == cert.subject
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.uri_sans(cert) == [f"spiffe://{DOMAIN}"]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert info.signing_key_id == ca.colon_hex(ski)
    assert len(ski) == 32


def test_leaf_carries_the_spiffe_id_and_verifies_under_its_root() -> None:
    state = ca_store.new_state({"cluster_id": CLUSTER}, NOW)
    root = ca_store.active_root(state)
    issued = ca_store.issue(state, _csr("web"), "web", NOW)
    assert issued["ServiceURI"] == ca.spiffe_service(DOMAIN, "dc1", "web")
    assert issued["ValidBefore"] == "2026-01-04T00:00:00Z"  # the default 72h TTL
    assert _verify(issued["CertPEM"], root.RootCert) == [issued["ServiceURI"]]
    other = ca_store.new_state({"cluster_id": CLUSTER}, NOW)
    with pytest.raises(VerificationError):
        _verify(issued["CertPEM"], ca_store.active_root(other).RootCert)


def test_csr_outside_the_trust_domain_is_refused() -> None:
    state = ca_store.new_state({"cluster_id": CLUSTER}, NOW)
    with pytest.raises(ca.CAError, match="trust domain"):
        ca_store.issue(state, _csr("web", "other.consul"), "web", NOW)
    with pytest.raises(ca.CAError, match="CSR"):
        ca_store.issue(state, "not a csr", "web", NOW)


def test_rotation_cross_signs_so_old_and_new_leaves_verify_everywhere() -> None:
    before = ca_store.new_state({"cluster_id": CLUSTER}, NOW)
    old_root = ca_store.active_root(before)
    old_leaf = ca_store.issue(before, _csr("api"), "api", NOW)
    after = ca_store.reconfigure(before, "consul", {"LeafCertTTL": "24h"}, NOW)
    assert after is not None
    new_root = ca_store.active_root(after)
    assert new_root.ID != old_root.ID
    assert len(new_root.IntermediateCerts) == 1
    assert [r.ID for r in after.Roots] == [old_root.ID, new_root.ID]
    assert not after.Roots[0].Active
    assert after.Roots[0].RotatedOutAt
    new_leaf = ca_store.issue(after, _csr("web"), "web", NOW)
    assert _verify(new_leaf["CertPEM"], old_root.RootCert)  # through the cross-signed root
    assert _verify(new_leaf["CertPEM"], new_root.RootCert)
    trusted = [r.RootCert for r in after.Roots]
    assert _verify(old_leaf["CertPEM"], *trusted)  # the old root is still trusted
    view = ca_store.roots_view(after)
    assert view["ActiveRootID"] == new_root.ID
    assert "SigningKey" not in view["Roots"][0]


def test_rotated_out_roots_are_pruned_after_twice_the_leaf_ttl() -> None:
    first = ca_store.new_state({"cluster_id": CLUSTER}, NOW)
    second = ca_store.reconfigure(first, "consul", {"LeafCertTTL": "2h"}, NOW)
    assert second is not None
    later = NOW + dt.timedelta(hours=4, minutes=1)
    third = ca_store.reconfigure(second, "consul", {"LeafCertTTL": "3h"}, later)
    assert third is not None
    assert [r.ID for r in third.Roots] == [r.ID for r in second.Roots[1:]] + [ca_store.active_root(third).ID]


def test_unchanged_configuration_is_no_rotation() -> None:
    state = ca_store.new_state({"cluster_id": CLUSTER, "leaf_cert_ttl": "10h"}, NOW)
    assert state.Config["LeafCertTTL"] == "10h"
    assert ca_store.reconfigure(state, "consul", {"LeafCertTTL": "10h"}, NOW) is None


def test_a_given_private_key_and_root_are_used() -> None:
    key = ca.generate_key("ec", 384)
    pem = ca.new_root(key, DOMAIN, serial=3, ttl=dt.timedelta(days=365 * 10), now=NOW)
    state = ca_store.new_state({"cluster_id": CLUSTER, "private_key": ca.key_pem(key), "root_cert": pem}, NOW)
    root = ca_store.active_root(state)
    assert root.RootCert.strip() == pem.strip()
    assert (root.PrivateKeyType, root.PrivateKeyBits) == ("ec", 384)
    assert _verify(ca_store.issue(state, _csr(), "web", NOW)["CertPEM"], pem)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"LeafCertTTL": "10m"}, "leaf cert TTL must be greater or equal than 1h0m0s"),
        ({"LeafCertTTL": "9000h"}, "leaf cert TTL must be less than 8760h0m0s"),
        ({"LeafCertTTL": "72h", "IntermediateCertTTL": "100h"}, r"3 \* LeafCertTTL \(>=216h0m0s\)"),
        ({"PrivateKeyType": "ec", "PrivateKeyBits": 255}, r"EC key length must be one of"),
        ({"PrivateKeyType": "dsa"}, "unknown key type dsa"),
        ({"LeafCertTTL": "soon"}, 'error decoding config: LeafCertTTL: time: invalid duration "soon"'),
        ({"LeafCertTTL": True}, "expected a duration"),
    ],
)
def test_bad_settings_get_consuls_messages(config: dict[str, object], message: str) -> None:
    with pytest.raises(CAConfigError, match=message):
        settings(normalise(config)[0])


def test_skip_validate_allows_short_leaves_for_tests() -> None:
    assert settings(normalise({"LeafCertTTL": "3s", "SkipValidate": True})[0]).leaf_ttl == 3.0


def test_only_the_built_in_provider() -> None:
    state = ca_store.new_state({"cluster_id": CLUSTER}, NOW)
    with pytest.raises(CAConfigError, match='unknown CA provider "vault"'):
        ca_store.reconfigure(state, "vault", {}, NOW)


def test_client_agents_get_no_key_and_what_they_write_back_gets_the_servers() -> None:
    key = ca.generate_key()
    state = ca_store.new_state({"cluster_id": CLUSTER, "private_key": ca.key_pem(key)}, NOW)
    rotated = ca_store.reconfigure(state, "consul", {"LeafCertTTL": "24h"}, NOW)
    assert rotated is not None
    sent = ca_store.without_keys(rotated)
    assert [r.SigningKey for r in sent.Roots] == ["", ""]
    assert "PrivateKey" not in sent.Config
    assert [r.ID for r in sent.Roots] == [r.ID for r in rotated.Roots]
    assert ca_store.with_keys(sent, rotated) == rotated
    with_config_key = ca_store.without_keys(state)
    assert ca_store.with_keys(with_config_key, state) == state  # the configured key too
    # A record whose active root this cluster never held cannot sign: refused, naming it.
    stranger = ca_store.without_keys(ca_store.new_state({"cluster_id": CLUSTER}, NOW))
    with pytest.raises(CAConfigError, match=f"the active root {stranger.Roots[0].ID} has no signing key"):
        ca_store.with_keys(stranger, rotated)
