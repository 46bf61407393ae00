"""``waypost tls ca create`` and ``tls cert create``: Consul's file names, output lines,
certificate names and usages, and its errors."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tls_certs import run_waypost

SERVER_WARNING = """==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.
"""


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.DNSName), [
        str(ip) for ip in names.get_values_for_type(x509.IPAddress)
    ]


def usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def test_ca_create_writes_consul_s_files_once(tmp_path: Path) -> None:
    done = run_waypost(tmp_path, "tls", "ca", "create")
    assert (done.returncode, done.stdout) == (
        0,
        "==> Saved consul-agent-ca.pem\n==> Saved consul-agent-ca-key.pem\n",
    )
    ca = load(tmp_path / "consul-agent-ca.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.public_key().curve.name == "secp256r1"
    assert ca.subject.rfc4514_string().startswith("CN=Consul Agent CA ")
    assert stat.S_IMODE((tmp_path / "consul-agent-ca-key.pem").stat().st_mode) == 0o600
    assert (tmp_path / "consul-agent-ca-key.pem").read_text().startswith("-----BEGIN EC PRIVATE KEY-----")

    again = run_waypost(tmp_path, "tls", "ca", "create")
    assert (again.returncode, again.stderr) == (1, "consul-agent-ca.pem already exists.\n")


def test_cert_create_for_each_kind_as_consul_names_them(tmp_path: Path) -> None:
    assert run_waypost(tmp_path, "tls", "ca", "create").returncode == 0
    server = run_waypost(tmp_path, "tls", "cert", "create", "-server")
    assert server.returncode == 0
    assert server.stdout == (
        SERVER_WARNING + "==> Using consul-agent-ca.pem and consul-agent-ca-key.pem\n"
        "==> Saved dc1-server-consul-0.pem\n==> Saved dc1-server-consul-0-key.pem\n"
    )
    client = run_waypost(tmp_path, "tls", "cert", "create", "-client")
    assert client.stdout.splitlines()[-1] == "==> Saved dc1-client-consul-0-key.pem"
    assert run_waypost(tmp_path, "tls", "cert", "create", "-cli").returncode == 0
    second = run_waypost(tmp_path, "tls", "cert", "create", "-server")
    assert "==> Saved dc1-server-consul-1.pem" in second.stdout

    ca = load(tmp_path / "consul-agent-ca.pem")
    expected = {
        "server": ("server.dc1.consul", ["server.dc1.consul", "localhost"], ["127.0.0.1"]),
        "client": ("client.dc1.consul", ["client.dc1.consul", "localhost"], ["127.0.0.1"]),
        "cli": ("cli.dc1.consul", ["cli.dc1.consul", "localhost"], []),
    }
    for kind, (name, dns, ips) in expected.items():
        cert = load(tmp_path / f"dc1-{kind}-consul-0.pem")
        cert.verify_directly_issued_by(ca)
        assert cert.subject.rfc4514_string() == f"CN={name}"
        assert sans(cert) == (dns, ips)
    both = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert set(usages(load(tmp_path / "dc1-server-consul-0.pem"))) == both
    assert set(usages(load(tmp_path / "dc1-client-consul-0.pem"))) == both
    assert usages(load(tmp_path / "dc1-cli-consul-0.pem")) == []
    # The pair loads as a TLS server's would.
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
        tmp_path / "dc1-server-consul-0.pem", tmp_path / "dc1-server-consul-0-key.pem"
    )


def test_datacenter_domain_node_and_additional_names(tmp_path: Path) -> None:
    assert run_waypost(tmp_path, "tls", "ca", "create", "-domain", "example").returncode == 0
    done = run_waypost(
        tmp_path,
        "tls", "cert", "create", "-server", "-dc", "east", "-domain", "example", "-node", "s1",
        "-additional-dnsname", "web.internal", "-additional-ipaddress", "10.0.0.5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "==> Using example-agent-ca.pem and example-agent-ca-key.pem" in done.stdout
    cert = load(tmp_path / "east-server-example-0.pem")
    assert cert.subject.rfc4514_string() == "CN=server.east.example"
    dns, ips = sans(cert)
    assert dns == ["web.internal", "s1.server.east.example", "server.east.example", "localhost"]
    assert [ipaddress.ip_address(ip) for ip in ips] == [
        ipaddress.ip_address("10.0.0.5"),
        ipaddress.ip_address("127.0.0.1"),
    ]


def test_errors_as_consul_words_them(tmp_path: Path) -> None:
    missing_ca = run_waypost(tmp_path, "tls", "cert", "create", "-server")
    assert missing_ca.returncode == 1
    assert missing_ca.stderr.startswith("Error reading CA: ")
    assert run_waypost(tmp_path, "tls", "ca", "create").returncode == 0
    for args, message in [
        ((), "Please provide either -server, -client, or -cli"),
        (("-server", "-client"), "Please provide either -server, -client, or -cli"),
        (("-client", "-node", "n1"), "-node requires -server"),
        (("-ca", "", "-server"), "Please provide the ca"),
        (("-client", "-additional-ipaddress", "300.1.1.1"), "-additional-ipaddress: "),
    ]:
        done = run_waypost(tmp_path, "tls", "cert", "create", *args)
        assert done.returncode == 1, args
        assert done.stderr.startswith(message), (args, done.stderr)
    assert not list(tmp_path.glob("dc1-*"))
    usage = run_waypost(tmp_path, "tls")
    assert usage.returncode == 1
    assert "Usage: waypost tls <subcommand>" in usage.stderr
