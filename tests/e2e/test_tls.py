"""TLS end to end with certificates from ``waypost tls``: py-consul, the CLI and
``waypost.client`` over mTLS with the HTTP port off; a client agent and a server on the
agent-to-server port with verify_server_hostname; a server on etcd with
``--client-cert-auth``."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import consul
import pytest
from cli_support import run_cli

from etcd_cluster import EtcdTLS, etcd_available, etcd_cluster
from tls_certs import Certs, make_certs
from waypost.client import ApiClient
from waypost.testing import AgentProcess, wait_for


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def agent(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    args = ["-dev", "-hcl", certs.hcl("defaults", verify_incoming=True), "-hcl", "ports { http = -1 }"]
    log = tmp_path_factory.mktemp("https") / "agent.log"
    with AgentProcess(args, tls=certs.client_context("cli"), log_path=log) as running:
        yield running


def cli_env(agent: AgentProcess, certs: Certs) -> dict[str, str]:
    cert, key = certs.pair("cli")
    return {
        "CONSUL_HTTP_ADDR": f"127.0.0.1:{agent.https_port}",
        "CONSUL_HTTP_SSL": "true",
        "CONSUL_CACERT": str(certs.ca),
        "CONSUL_CLIENT_CERT": str(cert),
        "CONSUL_CLIENT_KEY": str(key),
    }


def test_py_consul_over_mtls(agent: AgentProcess, certs: Certs) -> None:
    cert, key = certs.pair("cli")
    c = consul.Consul(
        host="127.0.0.1",
        port=agent.https_port,
        scheme="https",
        verify=str(certs.ca),
        cert=(str(cert), str(key)),
    )
    assert c.kv.put("tls/py", "over https")
    _, entry = c.kv.get("tls/py")
    assert entry is not None
    assert entry["Value"] == b"over https"
    assert c.agent.self()["Config"]["Datacenter"] == "dc1"
    c.agent.service.register("web", port=8080)
    _, nodes = c.health.service("web")
    assert [n["Service"]["Port"] for n in nodes] == [8080]


def test_waypost_cli_with_the_consul_environment(agent: AgentProcess, certs: Certs) -> None:
    env = cli_env(agent, certs)
    assert run_cli(None, "kv", "put", "tls/cli", "hello", env=env).code == 0
    got = run_cli(None, "kv", "get", "tls/cli", env=env)
    assert (got.code, got.out) == (0, "hello\n")
    assert "dc1" in run_cli(None, "members", env=env).out


def test_waypost_cli_with_flags_and_server_name(agent: AgentProcess, certs: Certs) -> None:
    cert, key = certs.pair("cli")
    flags = ["-http-addr", f"https://127.0.0.1:{agent.https_port}", "-ca-file", str(certs.ca)]
    flags += ["-client-cert", str(cert), "-client-key", str(key)]
    named = run_cli(None, "kv", "get", *flags, "-tls-server-name", "server.dc1.consul", "tls/py")
    assert (named.code, named.out) == (0, "over https\n")
    wrong = run_cli(None, "kv", "get", *flags, "-tls-server-name", "other.example", "tls/py")
    assert wrong.code == 1
    assert "certificate verify failed" in wrong.err


def test_cli_without_a_client_certificate_or_ca_is_refused(agent: AgentProcess, certs: Certs) -> None:
    env = cli_env(agent, certs)
    no_cert = {k: v for k, v in env.items() if k not in ("CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY")}
    refused = run_cli(None, "kv", "get", "tls/cli", env=no_cert)
    assert refused.code == 1
    assert refused.err.startswith(
        f'Error querying Consul agent: Get "https://127.0.0.1:{agent.https_port}/v1/kv/'
    )
    no_ca = {k: v for k, v in env.items() if k != "CONSUL_CACERT"}
    untrusted = run_cli(None, "kv", "get", "tls/cli", env=no_ca)
    assert untrusted.code == 1
    assert "certificate verify failed" in untrusted.err
    missing = run_cli(None, "kv", "get", "tls/cli", env={**env, "CONSUL_CACERT": "/nonexistent/ca.pem"})
    assert missing.code == 1
    assert "Error creating TLS config: CA: failed to load CA /nonexistent/ca.pem" in missing.err


async def test_waypost_client_reads_the_consul_environment(
    agent: AgentProcess, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = cli_env(agent, certs)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    async with ApiClient() as api:
        await api.put("/v1/kv/tls/client", b"from waypost.client")
        [entry] = (await api.get("/v1/kv/tls/client")).json()
        assert base64.b64decode(entry["Value"]) == b"from waypost.client"
        async for answer in api.watch("/v1/kv/tls/client"):
            assert answer.index > 0
            break


def test_client_agent_joins_a_server_over_tls_checking_its_name(certs: Certs, tmp_path: Path) -> None:
    rpc = {"verify_incoming": True, "verify_outgoing": True, "verify_server_hostname": True}
    server_args = [
        "-server",
        "-bootstrap",
        "-bind",
        "127.0.0.1",
        "-node",
        "s1",
        "-data-dir",
        str(tmp_path / "s1"),
    ]
    # The client agent reads the registry through a server's HTTPS API, under the same name.
    server = AgentProcess(
        [*server_args, "-hcl", certs.hcl("internal_rpc", "server", **rpc), "-hcl", certs.hcl("https")],
        tls=certs.client_context("cli"),
        log_path=tmp_path / "s1.log",
    )
    client_args = ["-bind", "127.0.0.1", "-node", "c1", "-data-dir", str(tmp_path / "c1")]
    with server:
        client = AgentProcess(
            [*client_args, "-retry-join", server.server_address, "-retry-interval", "1s", "-hcl",
             certs.hcl("internal_rpc", "client", **rpc)],
            log_path=tmp_path / "c1.log",
            wait_for_leader=False,
        )  # fmt: skip
        with client:
            wait_for(lambda: client.get("/v1/status/leader"), 20)
            client.put("/v1/agent/service/register", {"Name": "api", "Port": 9000})
            wait_for(lambda: server.get("/v1/catalog/service/api"), 20)
            assert server.get("/v1/catalog/service/api")[0]["Node"] == "c1"

            # A listener whose certificate names a client, not server.dc1.consul, is refused.
            rogue_args = ["-server", "-bootstrap", "-bind", "127.0.0.1", "-node", "rogue"]
            rogue = AgentProcess(
                [
                    *rogue_args,
                    "-data-dir",
                    str(tmp_path / "rogue"),
                    "-hcl",
                    certs.hcl("internal_rpc", "client"),
                ],
                log_path=tmp_path / "rogue.log",
            )
            with rogue:
                status, _, body = client.request("PUT", f"/v1/agent/join/{rogue.server_address}")
                assert status == 500
                assert f"Failed to join {rogue.server_address}" in body.decode()
                assert "certificate" in body.decode().lower()

        # A client agent without TLS towards servers gets no answer from the TLS listener.
        plain = AgentProcess(
            [*client_args[:-1], str(tmp_path / "c2"), "-node", "c2"],
            log_path=tmp_path / "c2.log",
            wait_for_leader=False,
        )
        with plain:
            status, _, body = plain.request("PUT", f"/v1/agent/join/{server.server_address}")
            assert status == 500
            assert f"Failed to join {server.server_address}" in body.decode()


@pytest.mark.etcd
def test_server_on_etcd_with_client_certificate_auth(certs: Certs, tmp_path: Path) -> None:
    if not etcd_available():
        pytest.skip("etcd is not installed")
    cert, key = certs.pair("server")
    (tmp_path / "etcd").mkdir()
    with etcd_cluster(tmp_path / "etcd", tls=EtcdTLS(certs.ca, cert, key)) as etcd:
        [endpoint] = etcd.endpoints
        args = ["-server", "-bind", "127.0.0.1", "-node", "s1", "-data-dir", str(tmp_path / "s1")]
        args += ["-store", f"etcds://{endpoint}", "-hcl", certs.hcl("defaults", "server")]
        with AgentProcess(args, log_path=tmp_path / "s1.log") as server:
            server.put("/v1/kv/over/etcd", b"mutual tls")
            [entry] = server.get("/v1/kv/over/etcd")
            assert base64.b64decode(entry["Value"]) == b"mutual tls"
        # Without a client certificate etcd turns the server away: start-up never completes.
        no_pair = f'tls {{ store {{ ca_file = "{certs.ca}" }} }}'
        plain_args = [*args[:-2], "-hcl", no_pair, "-data-dir", str(tmp_path / "s2")]
        with pytest.raises((RuntimeError, TimeoutError)):
            AgentProcess(plain_args, log_path=tmp_path / "s2.log").start(timeout=8)
