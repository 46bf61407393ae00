"""The built-in CA's cryptography, sans I/O: keys, roots, cross-signatures and leaf certificates.

Certificates follow Consul's built-in provider so that anything that inspects them (Envoy,
the Go API's tests, a human with openssl) sees what it would from Consul: a root whose
subject is ``pri-<id>.consul.ca.<cluster-id prefix>.consul`` with the trust domain as its URI
SAN, and leaves whose only identity is a SPIFFE URI SAN
(``spiffe://<trust-domain>/ns/default/dc/<dc>/svc/<name>``). Key identifiers are SHA-256
of the public key, which is what a root's ``SigningKeyID`` reports in colon hex.

A rotation's new root is cross-signed by the old root's key; leaves of the new root carry
that certificate as an intermediate, so a peer that still trusts only the old root accepts
them, while leaves of the old root stay valid as long as the old root is still listed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
else:
    from waypost.lazy_imports import ec, hashes, rsa, serialization, x509

__all__ = [
    "CAError",
    "PrivateKey",
    "RootInfo",
    "ca_common_name",
    "colon_hex",
    "cross_sign",
    "generate_key",
    "key_pem",
    "load_cert",
    "load_certs",
    "load_key",
    "make_csr",
    "new_root",
    "root_info",
    "sign_leaf",
    "spiffe_service",
    "trust_domain",
    "uri_sans",
]

_CURVES = {224: "SECP224R1", 256: "SECP256R1", 384: "SECP384R1", 521: "SECP521R1"}
"""EC key sizes by curve, named so that naming them does not load cryptography."""
_BACKDATE = dt.timedelta(minutes=1)
"""Leaves and roots start a minute in the past, as Consul's do, for peers whose clocks lag."""


class CAError(ValueError):
    """A key, certificate or CSR the CA cannot use; the message says which and why."""


@dataclass(frozen=True, slots=True)
class RootInfo:
    """What a root's ``CARoot`` record reports about its certificate."""

    id: str
    serial: int
    signing_key_id: str
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str
    key_bits: int


def colon_hex(data: bytes) -> str:
    """Consul's spelling of key ids, fingerprints and serials: ``0a:1b:...``."""
    return ":".join(f"{b:02x}" for b in data)


def trust_domain(cluster_id: str) -> str:
    return f"{cluster_id}.consul"


def spiffe_service(domain: str, datacenter: str, service: str, namespace: str = "default") -> str:
    return f"spiffe://{domain}/ns/{namespace}/dc/{datacenter}/svc/{service}"


def ca_common_name(unique: str, domain: str) -> str:
    """``pri-<unique>.consul.ca.<first 8 of the cluster id>.consul``, as Consul names roots."""
    return f"pri-{unique}.consul.ca.{domain[:8]}.consul"


def generate_key(key_type: str = "ec", bits: int = 256) -> PrivateKey:
    if key_type == "ec" and bits in _CURVES:
        curve: ec.EllipticCurve = getattr(ec, _CURVES[bits])()
        return ec.generate_private_key(curve)
    if key_type == "rsa" and bits in (2048, 4096):
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    raise CAError(f"unsupported private key type {key_type!r} with {bits} bits")


def key_pem(key: PrivateKey) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


def load_key(pem: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise CAError(f"error parsing private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CAError("error parsing private key: only EC and RSA keys are supported")
    return key


def load_cert(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise CAError(f"error parsing certificate: {exc}") from None


def load_certs(pem: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (a leaf followed by its intermediates)."""
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise CAError(f"error parsing certificate: {exc}") from None


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_id(key: PrivateKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
           "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")  # fmt: skip


def _key_usage(*granted: str) -> x509.KeyUsage:
    return x509.KeyUsage(**{flag: flag in granted for flag in _USAGES})


def _ca_builder(
    subject: x509.Name, public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, domain: str,
    serial: int, not_before: dt.datetime, not_after: dt.datetime,
) -> x509.CertificateBuilder:  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(_key_id(public)), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{domain}")]),
            critical=False,
        )
    )


def new_root(key: PrivateKey, domain: str, *, serial: int, ttl: dt.timedelta, now: dt.datetime) -> str:
    """A self-signed root for ``domain`` (the trust domain), as PEM."""
    name = x509.Name(
        [x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, ca_common_name(secrets.token_hex(4), domain))]
    )
    builder = _ca_builder(name, key.public_key(), domain, serial, now - _BACKDATE, now + ttl)
    builder = builder.issuer_name(name).add_extension(
        x509.AuthorityKeyIdentifier(_key_id(key), None, None), critical=False
    )
    return _cert_pem(builder.sign(key, hashes.SHA256()))


def cross_sign(new_root_pem: str, old_root_pem: str, old_key: PrivateKey, *, now: dt.datetime) -> str:
    """The new root's subject and key, issued by the old root: the intermediate that lets a
    peer trusting only the old root accept leaves of the new one. It expires with the old
    root at the latest, since nothing can chain through it afterwards."""
    new, old = load_cert(new_root_pem), load_cert(old_root_pem)
    public = new.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise CAError("the new root's key is neither EC nor RSA")
    uris = uri_sans(new)
    domain = uris[0].removeprefix("spiffe://") if uris else ""
    not_after = min(new.not_valid_after_utc, old.not_valid_after_utc)
    builder = _ca_builder(new.subject, public, domain, new.serial_number, now - _BACKDATE, not_after)
    builder = builder.issuer_name(old.subject).add_extension(
        x509.AuthorityKeyIdentifier(_key_id(old_key), None, None), critical=False
    )
    return _cert_pem(builder.sign(old_key, hashes.SHA256()))


def root_info(pem: str) -> RootInfo:
    cert = load_cert(pem)
    public = cert.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        key_type, bits = "ec", public.curve.key_size
    elif isinstance(public, rsa.RSAPublicKey):
        key_type, bits = "rsa", public.key_size
    else:
        raise CAError("the root's key is neither EC nor RSA")
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = _key_id(public)
    return RootInfo(
        id=colon_hex(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()),
        serial=cert.serial_number,
        signing_key_id=colon_hex(ski),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_type=key_type,
        key_bits=bits,
    )


def uri_sans(cert: x509.Certificate | x509.CertificateSigningRequest) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def make_csr(key: PrivateKey, uri: str, common_name: str) -> str:
    """The request an agent sends for a service's leaf (the key never leaves the agent)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def sign_leaf(
    csr_pem: str, ca_pem: str, ca_key: PrivateKey, *, ttl: dt.timedelta, now: dt.datetime, domain: str
) -> str:
    """A leaf for the CSR's one SPIFFE URI, which must lie in ``domain``. Its validity never
    outlasts the CA that signs it."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as exc:
        raise CAError(f"error parsing CSR: {exc}") from None
    if not csr.is_signature_valid:
        raise CAError("CSR signature is invalid")
    uris = uri_sans(csr)
    if len(uris) != 1 or not uris[0].startswith(f"spiffe://{domain}/"):
        raise CAError(f"CSR SAN does not match the trust domain {domain!r}: {uris}")
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise CAError("CSR key is neither EC nor RSA")
    ca = load_cert(ca_pem)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + ttl, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage("digital_signature", "key_encipherment", "key_agreement"), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH, x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier(_key_id(public)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(_key_id(ca_key), None, None), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uris[0])]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(leaf)
