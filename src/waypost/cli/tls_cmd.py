"""``waypost tls ca create`` and ``waypost tls cert create``: Consul's built-in CA for agent TLS.

Files are named and written where Consul writes them (the working directory:
``consul-agent-ca.pem``, ``dc1-server-consul-0.pem``...) with the same names in the
certificates (``server.dc1.consul``, ``client.dc1.consul``, ``cli.dc1.consul``), so
guides and automation written for ``consul tls`` work unchanged. Keys are ECDSA P-256
as Consul's; all cryptography is the ``cryptography`` library's. Private keys are
written readable by their owner only, where Consul leaves them to the umask.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from waypost.cli import ui
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.cli.group import Subcommand, dispatch

CA_CREATE_USAGE = """
Usage: waypost tls ca create [options]

  Create a new consul CA:

  $ waypost tls ca create
  ==> Saved consul-agent-ca.pem
  ==> Saved consul-agent-ca-key.pem
"""

CERT_CREATE_USAGE = """
Usage: waypost tls cert create [options]

  Create a new certificate

  $ waypost tls cert create -server
  ==> WARNING: Server Certificates grants authority to become a
      server and access all state in the cluster including root keys
      and all ACL tokens. Do not distribute them to production hosts
      that are not server nodes. Store them as securely as CA keys.
  ==> Using consul-agent-ca.pem and consul-agent-ca-key.pem
  ==> Saved dc1-server-consul-0.pem
  ==> Saved dc1-server-consul-0-key.pem
  $ waypost tls cert create -client
  ==> Using consul-agent-ca.pem and consul-agent-ca-key.pem
  ==> Saved dc1-client-consul-0.pem
  ==> Saved dc1-client-consul-0-key.pem
"""

SERVER_WARNING = """==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys."""

_MAX_SUFFIX = 10000


def _ca_flags() -> FlagSet:
    flags = FlagSet(CA_CREATE_USAGE, http=False, server=False)
    flags.integer(
        "days", 1825, "Provide number of days the CA is valid for from now on. Defaults to 5 years."
    )
    flags.boolean(
        "name-constraint",
        False,
        "Add name constraints for the CA. Results in rejecting certificates for other DNS than specified. "
        "If turned on localhost and -domain will be added to the allowed DNS. Defaults to false.",
    )
    flags.string(
        "domain", "consul", "Domain of consul cluster. Only used in combination with -name-constraint."
    )
    flags.repeated(
        "additional-name-constraint",
        "Add name constraints for the CA. Can be used multiple times. Only used with -name-constraint.",
    )
    return flags


def _cert_flags() -> FlagSet:
    flags = FlagSet(CERT_CREATE_USAGE, http=False, server=False)
    flags.string("ca", "#DOMAIN#-agent-ca.pem", "Provide path to the ca. Defaults to #DOMAIN#-agent-ca.pem.")
    flags.string(
        "key", "#DOMAIN#-agent-ca-key.pem", "Provide path to the key. Defaults to #DOMAIN#-agent-ca-key.pem."
    )
    flags.boolean("server", False, "Generate server certificate.")
    flags.boolean("client", False, "Generate client certificate.")
    flags.boolean("cli", False, "Generate cli certificate.")
    flags.string(
        "node",
        "",
        "When generating a server cert and this is set an additional dns name is included of the form "
        "<node>.server.<datacenter>.<domain>.",
    )
    flags.integer(
        "days", 365, "Provide number of days the certificate is valid for from now on. Defaults to 1 year."
    )
    flags.string(
        "dc", "dc1", "Provide the datacenter. Matters only for -server certificates. Defaults to dc1."
    )
    flags.string("domain", "consul", "Provide the domain. Matters only for -server certificates.")
    flags.repeated(
        "additional-dnsname",
        "Provide an additional dnsname for Subject Alternative Names. localhost is always included. "
        "This flag may be provided multiple times.",
    )
    flags.repeated(
        "additional-ipaddress",
        "Provide an additional ipaddress for Subject Alternative Names. 127.0.0.1 is always included. "
        "This flag may be provided multiple times.",
    )
    return flags


def _ca_create(opts: Parsed) -> int:
    domain = opts.string("domain")
    cert_name, key_name = f"{domain}-agent-ca.pem", f"{domain}-agent-ca-key.pem"
    for name in (cert_name, key_name):
        if os.path.exists(name):
            ui.error(f"{name} already exists.")
            return 1
    key = ec.generate_private_key(ec.SECP256R1())
    serial = secrets.randbits(128)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.POSTAL_CODE, "94105"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
            x509.NameAttribute(NameOID.STREET_ADDRESS, "101 Second Street"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HashiCorp Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Consul Agent CA {serial}"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=opts.integer("days")))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    if opts.boolean("name-constraint"):
        permitted = [*opts.strings("additional-name-constraint"), domain, "localhost"]
        constraints = x509.NameConstraints([x509.DNSName(n) for n in permitted], None)
        builder = builder.add_extension(constraints, critical=True)
    cert = builder.sign(key, hashes.SHA256())
    _save(cert_name, cert.public_bytes(serialization.Encoding.PEM), private=False)
    _save(key_name, _key_pem(key), private=True)
    return 0


def _cert_create(opts: Parsed) -> int:
    if not opts.string("ca"):
        ui.error("Please provide the ca")
        return 1
    if not opts.string("key"):
        ui.error("Please provide the key")
        return 1
    kinds = [kind for kind in ("server", "client", "cli") if opts.boolean(kind)]
    if len(kinds) != 1:
        ui.error("Please provide either -server, -client, or -cli")
        return 1
    kind = kinds[0]
    dc, domain, node = opts.string("dc"), opts.string("domain"), opts.string("node")
    if node and kind != "server":
        ui.error("-node requires -server")
        return 1
    try:
        ips = [ipaddress.ip_address(a.strip()) for a in opts.strings("additional-ipaddress") if a.strip()]
    except ValueError as exc:
        ui.error(f"-additional-ipaddress: {exc}")
        return 1
    dns = [d.strip() for d in opts.strings("additional-dnsname") if d.strip()]
    name = f"{kind}.{dc}.{domain}"
    if kind == "server" and node:
        dns.append(f"{node}.server.{dc}.{domain}")
    dns += [name, "localhost"]
    if kind != "cli":
        ips.append(ipaddress.ip_address("127.0.0.1"))
    else:
        dns, ips = [name, "localhost"], []
    usages = {
        "server": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        "client": [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
        "cli": [],
    }[kind]

    prefix = f"{dc}-{kind}-{domain}"
    files = next(
        ((f"{prefix}-{i}.pem", f"{prefix}-{i}-key.pem") for i in range(_MAX_SUFFIX + 1) if _free(prefix, i)),
        None,
    )
    if files is None:
        ui.error("Could not find a filename that doesn't already exist")
        return 1
    ca_file, key_file = (opts.string(f).replace("#DOMAIN#", domain, 1) for f in ("ca", "key"))
    try:
        with open(ca_file, "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError) as exc:
        ui.error(f"Error reading CA: {exc}")
        return 1
    try:
        with open(key_file, "rb") as f:
            signer = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        ui.error(f"Error reading CA key: {exc}")
        return 1
    if not isinstance(signer, ec.EllipticCurvePrivateKey):
        ui.error("unknown PEM block type for signing key: the CA key is not an EC private key")
        return 1
    if kind == "server":
        ui.output(SERVER_WARNING)
    ui.output(f"==> Using {ca_file} and {key_file}")

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ip) for ip in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(128))
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=opts.integer("days")))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    _save(files[0], cert.public_bytes(serialization.Encoding.PEM), private=False)
    _save(files[1], _key_pem(key), private=True)
    return 0


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """SEC 1 ("EC PRIVATE KEY"), the block type Consul writes and reads back."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _free(prefix: str, i: int) -> bool:
    return not os.path.exists(f"{prefix}-{i}.pem") and not os.path.exists(f"{prefix}-{i}-key.pem")


def _save(name: str, data: bytes, *, private: bool) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    ui.output(f"==> Saved {name}")


CA_SUBCOMMANDS: dict[str, Subcommand] = {
    "create": (lambda a: run_with_flags(_ca_flags(), a, _ca_create), "Create a new consul CA"),
}
CERT_SUBCOMMANDS: dict[str, Subcommand] = {
    "create": (lambda a: run_with_flags(_cert_flags(), a, _cert_create), "Create a new certificate"),
}
SUBCOMMANDS: dict[str, Subcommand] = {
    "ca": (
        lambda a: dispatch("tls ca", "Helpers for CAs", CA_SUBCOMMANDS, a),
        "Helpers for CAs",
    ),
    "cert": (
        lambda a: dispatch("tls cert", "Helpers for certificates", CERT_SUBCOMMANDS, a),
        "Helpers for certificates",
    ),
}


def run(argv: Sequence[str]) -> int:
    return dispatch("tls", "Builtin helpers for creating CAs and certificates.", SUBCOMMANDS, argv)
