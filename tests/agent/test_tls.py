"""HTTPS on a real agent: serving with the HTTP port off, mTLS refusals at the handshake,
certificates reloaded by SIGHUP and /v1/agent/reload, and bad files named at start-up;
which certificates stand in for the agent token on the store port, and for how long."""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from acl_kit import ACL_CONFIG, ROOT
from tls_certs import Certs, make_certs, run_waypost
from waypost.agent.tls import AgentTLS
from waypost.config import load_config
from waypost.testing import AgentProcess, wait_for
from waypost.tlsutil import TLSSetupError

REQUEST = b"GET /v1/status/leader HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def mtls_agent(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    log = tmp_path_factory.mktemp("mtls") / "agent.log"
    snippet = certs.hcl("defaults", verify_incoming=True)
    with AgentProcess(["-dev", "-hcl", snippet], tls=certs.client_context("cli"), log_path=log) as agent:
        yield agent


def exchange(port: int, ctx: ssl.SSLContext) -> bytes:
    """One request on a fresh TLS connection: the whole answer, or the TLS error raised."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(REQUEST)
        answer = b""
        for _ in range(100):
            chunk = tls.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def served_serial(port: int, certs: Certs) -> int:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        certs.client_context("cli").wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def pem_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_https_is_served_with_the_http_port_off(certs: Certs, tmp_path: Path) -> None:
    args = ["-dev", "-hcl", certs.hcl("defaults"), "-hcl", "ports { http = -1 }"]
    with AgentProcess(args, tls=certs.client_context(None), log_path=tmp_path / "agent.log") as agent:
        assert agent.get("/v1/agent/self")["Config"]["NodeName"]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", agent.http_port), timeout=5).close()
    assert f"HTTPS on 127.0.0.1:{agent.https_port}" in (tmp_path / "agent.log").read_text()


def test_client_certificate_signed_by_the_ca_is_accepted(mtls_agent: AgentProcess, certs: Certs) -> None:
    for kind in ("cli", "client", "server"):
        assert exchange(mtls_agent.https_port, certs.client_context(kind)).startswith(b"HTTP/1.1 200 OK")


def test_missing_client_certificate_is_refused_at_the_handshake(
    mtls_agent: AgentProcess, certs: Certs
) -> None:
    tls12 = certs.client_context(None)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        exchange(mtls_agent.https_port, tls12)
    # A TLS 1.3 client finishes its half first; the server's refusal then ends the
    # connection before any HTTP answer.
    try:
        answer = exchange(mtls_agent.https_port, certs.client_context(None))
    except (ssl.SSLError, ConnectionResetError):
        answer = b""
    assert answer == b""


def test_client_certificate_from_another_ca_is_refused(
    mtls_agent: AgentProcess, certs: Certs, tmp_path: Path
) -> None:
    other = make_certs(tmp_path / "other")
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    ctx.load_cert_chain(*other.pair("cli"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        exchange(mtls_agent.https_port, ctx)


def test_plain_http_on_the_https_port_gets_no_answer(mtls_agent: AgentProcess) -> None:
    with socket.create_connection(("127.0.0.1", mtls_agent.https_port), timeout=5) as raw:
        raw.sendall(REQUEST)
        assert not raw.recv(65536).startswith(b"HTTP/1.1 200")


def test_reload_serves_the_new_certificate_to_new_connections(certs: Certs, tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    first = certs.pair("server")
    shutil.copy(first[0], live / "agent.pem")
    shutil.copy(first[1], live / "agent-key.pem")
    snippet = (
        f'tls {{ https {{ ca_file = "{certs.ca}" cert_file = "{live / "agent.pem"}" '
        f'key_file = "{live / "agent-key.pem"}" }} }}'
    )
    with AgentProcess(
        ["-dev", "-hcl", snippet], tls=certs.client_context(None), log_path=tmp_path / "agent.log"
    ) as agent:
        assert served_serial(agent.https_port, certs) == pem_serial(first[0])
        assert (
            run_waypost(
                certs.dir, "tls", "cert", "create", "-server", "-additional-dnsname", "new"
            ).returncode
            == 0
        )
        second = certs.pair("server", 1)
        shutil.copy(second[0], live / "agent.pem")
        shutil.copy(second[1], live / "agent-key.pem")
        # Established connections keep their certificate until the agent is told.
        assert served_serial(agent.https_port, certs) == pem_serial(first[0])
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: served_serial(agent.https_port, certs) == pem_serial(second[0]), 10)

        # /v1/agent/reload does the same; a broken file is refused and the old pair stays.
        (live / "agent.pem").write_text("not a certificate")
        status, _, body = agent.request("PUT", "/v1/agent/reload")
        assert status == 500
        assert b"tls.https: failed to load cert/key pair" in body
        assert served_serial(agent.https_port, certs) == pem_serial(second[0])
        shutil.copy(first[0], live / "agent.pem")
        shutil.copy(first[1], live / "agent-key.pem")
        assert agent.request("PUT", "/v1/agent/reload")[0] == 200
        assert served_serial(agent.https_port, certs) == pem_serial(first[0])


def test_unreadable_certificate_stops_start_up_naming_the_setting(certs: Certs, tmp_path: Path) -> None:
    snippet = (
        f'tls {{ defaults {{ cert_file = "{tmp_path / "missing.pem"}" key_file = "{tmp_path / "k.pem"}" }} }}'
    )
    agent = AgentProcess(
        ["-dev", "-hcl", snippet], tls=certs.client_context(None), log_path=tmp_path / "agent.log"
    )
    with pytest.raises(RuntimeError, match="exited with 1"):
        agent.start()
    log = (tmp_path / "agent.log").read_text()
    assert "==> Error starting agent: tls.https: failed to load cert/key pair" in log
    assert "Traceback" not in log


def test_verify_incoming_without_a_ca_stops_start_up(certs: Certs, tmp_path: Path) -> None:
    cert, key = certs.pair("server")
    snippet = f'tls {{ https {{ cert_file = "{cert}" key_file = "{key}" verify_incoming = true }} }}'
    agent = AgentProcess(
        ["-dev", "-hcl", snippet], tls=certs.client_context(None), log_path=tmp_path / "agent.log"
    )
    with pytest.raises(RuntimeError, match="exited with 1"):
        agent.start()
    assert (
        "tls.https: verify_incoming set but no CA certificates were provided"
        in (tmp_path / "agent.log").read_text()
    )


def test_which_listeners_serve_tls_and_the_name_servers_must_carry(certs: Certs, tmp_path: Path) -> None:
    rpc = certs.hcl("internal_rpc", verify_outgoing=True, verify_server_hostname=True)
    args = ["-server", "-data-dir", str(tmp_path), "-domain", "example.", "-hcl", rpc]
    tls = AgentTLS(load_config([*args, "-https-port", "8501"]))
    assert tls.https is None  # no certificate for HTTPS: the port stays idle (a config warning)
    assert tls.internal is not None
    assert tls.servers is not None
    assert tls.servers.server_name == "server.dc1.example"
    client = AgentTLS(load_config(["-data-dir", str(tmp_path), "-hcl", rpc]))
    assert client.internal is None  # client agents open no agent-to-server listener
    assert client.servers is not None
    assert AgentTLS(load_config(["-dev"])).servers is None


def test_a_reload_that_fails_can_be_retried(certs: Certs, tmp_path: Path) -> None:
    live = tmp_path / "server.pem"
    shutil.copy(certs.pair("server")[0], live)
    key = certs.pair("server")[1]
    snippet = f'tls {{ internal_rpc {{ ca_file = "{certs.ca}" cert_file = "{live}" key_file = "{key}" }} }}'
    config = load_config(["-server", "-data-dir", str(tmp_path / "d"), "-hcl", snippet])
    tls = AgentTLS(config)
    before = tls.internal
    live.write_text("garbage")
    with pytest.raises(TLSSetupError, match=r"tls\.internal_rpc: failed to load cert/key pair"):
        tls.reload(config)
    shutil.copy(certs.pair("server")[0], live)
    tls.reload(config)
    assert tls.internal is before  # changed in place: the listener keeps its context


def test_an_agent_certificate_is_one_naming_a_server_or_client_of_this_datacenter(
    certs: Certs, tmp_path: Path
) -> None:
    verifying = certs.hcl("internal_rpc", verify_incoming=True)
    args = ["-server", "-data-dir", str(tmp_path), "-domain", "Example.", "-datacenter", "east"]
    tls = AgentTLS(load_config([*args, "-hcl", verifying]))
    for names, admitted in [
        ({"server.east.example", "localhost"}, True),
        ({"client.east.example"}, True),
        ({"cli.east.example", "localhost"}, False),  # an operator's -cli certificate
        ({"cli.client.east.example"}, False),
        ({"x.server.east.example"}, False),
        ({"client.dc1.example", "server.west.example"}, False),  # another datacenter's
        ({"client.east.consul"}, False),
        (set(), False),
    ]:
        assert tls.verified_agent(frozenset(names)) is admitted, names
    # verify_mode is read live: a reload that stops verifying takes the admission away.
    tls.reload(load_config([*args, "-hcl", certs.hcl("internal_rpc")]))
    assert not tls.verified_agent(frozenset({"client.east.example"}))
    tls.reload(load_config([*args, "-hcl", verifying]))
    assert tls.verified_agent(frozenset({"client.east.example"}))
    unverified = AgentTLS(load_config([*args, "-hcl", certs.hcl("internal_rpc")]))
    assert not unverified.verified_agent(frozenset({"client.east.example"}))
    client = AgentTLS(load_config(["-data-dir", str(tmp_path), "-hcl", verifying]))
    assert not client.verified_agent(frozenset({"client.dc1.consul"}))  # serves no store port


def _store_status(port: int, context: ssl.SSLContext, token: str = "") -> int:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        conn.request("GET", "/v1/internal/store/revision", headers={"X-Consul-Token": token} if token else {})
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_store_port_admits_agent_certificates_while_it_verifies_them(
    certs: Certs, tmp_path: Path
) -> None:
    acl, rpc = tmp_path / "acl.hcl", tmp_path / "rpc.hcl"
    acl.write_text(ACL_CONFIG.format(root=ROOT, tokens=""))
    rpc.write_text(certs.hcl("internal_rpc", verify_incoming=True))
    args = ["-dev", "-config-file", str(acl), "-config-file", str(rpc)]
    with AgentProcess(args, log_path=tmp_path / "agent.log") as agent:
        client, cli = certs.client_context("client"), certs.client_context("cli")
        assert _store_status(agent.server_port, client) == 200
        assert _store_status(agent.server_port, cli) == 403
        assert _store_status(agent.server_port, cli, ROOT) == 200
        rpc.write_text(certs.hcl("internal_rpc"))
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: _store_status(agent.server_port, client) == 403, 10)
        assert _store_status(agent.server_port, client, ROOT) == 200
