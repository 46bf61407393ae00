"""WAN federation over HTTPS only: datacenters whose agents serve no plain HTTP, demand
client certificates (verify_incoming) and check that a peer's certificate names a server
of its datacenter (``verify_server_hostname``: ``server.<dc>.consul``) probe each other and
forward ``?dc=`` over mTLS with the certificates of ``waypost tls``. A peer presenting
another name is refused; a datacenter of several HTTPS-only servers on one etcd is
federated whole by one ``join -wan``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from etcd_cluster import etcd_available, etcd_cluster
from tls_certs import Certs, make_certs, run_waypost
from waypost.testing import AgentProcess, wait_for

FAST_WAN = 'gossip_wan {\n probe_interval = "200ms"\n probe_timeout = "1s"\n suspicion_mult = 3\n}'
VERIFY_NAMES = "tls { internal_rpc { verify_server_hostname = true } }"
ALIVE, FAILED = 1, 4


def https_args(
    certs: Certs, dc: str, node: str, *, cert_dc: str = "", verify_names: bool = True
) -> list[str]:
    """An HTTPS-only agent of ``dc`` presenting the server certificate of ``cert_dc`` (its own by default)."""
    tls = certs.hcl("defaults", "server", dc=cert_dc or dc, verify_incoming=True, verify_outgoing=True)
    args = ["-node", node, "-datacenter", dc, "-hcl", tls, "-hcl", "ports { http = -1 }", "-hcl", FAST_WAN]
    return args + (["-hcl", VERIFY_NAMES] if verify_names else [])


def https_agent(certs: Certs, dc: str, log: Path, **kw: str | bool) -> AgentProcess:
    args = ["-dev", *https_args(certs, dc, f"{dc}-s", **kw)]  # type: ignore[arg-type]
    return AgentProcess(args, tls=certs.client_context("cli"), log_path=log)


def wan_status(agent: AgentProcess) -> dict[str, int]:
    return {m["Name"]: m["Status"] for m in agent.get("/v1/agent/members?wan=1")}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    made = make_certs(Path(tmp_path_factory.mktemp("wan-tls")) / "certs")
    for dc in ("dc2", "dc3"):
        done = run_waypost(made.dir, "tls", "cert", "create", "-server", "-dc", dc)
        assert done.returncode == 0, done.stderr
    return made


@pytest.fixture(scope="module")
def dcs(
    certs: Certs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AgentProcess, AgentProcess]]:
    base = Path(tmp_path_factory.mktemp("wan-tls-dcs"))
    with (
        https_agent(certs, "dc1", base / "dc1.log") as dc1,
        https_agent(certs, "dc2", base / "dc2.log") as dc2,
    ):
        yield dc1, dc2


def test_servers_federate_and_forward_over_mtls(dcs: tuple[AgentProcess, AgentProcess]) -> None:
    dc1, dc2 = dcs
    dc1.put(f"/v1/agent/join/127.0.0.1:{dc2.https_port}?wan=1")
    wait_for(lambda: wan_status(dc2) == {"dc1-s.dc1": ALIVE, "dc2-s.dc2": ALIVE}, 10)
    wait_for(lambda: wan_status(dc1) == {"dc1-s.dc1": ALIVE, "dc2-s.dc2": ALIVE}, 10)
    dc1.put("/v1/kv/over-tls?dc=dc2", b"secret")
    assert dc2.request("GET", "/v1/kv/over-tls?raw")[2] == b"secret"
    assert dc2.request("GET", "/v1/kv/over-tls?dc=dc1")[0] == 404
    assert dc1.get("/v1/catalog/datacenters") == ["dc1", "dc2"]


def test_a_peer_presenting_another_servers_certificate_is_refused(
    dcs: tuple[AgentProcess, AgentProcess], certs: Certs, tmp_path: Path
) -> None:
    dc1, _ = dcs
    # A server of dc4 holding a certificate of the same CA, but dc1's name.
    with https_agent(certs, "dc4", tmp_path / "dc4.log", cert_dc="dc1", verify_names=False) as dc4:
        status, _, body = dc1.request("PUT", f"/v1/agent/join/127.0.0.1:{dc4.https_port}?wan=1")
        assert status != 200
        assert b"dc1" in body, body
        assert "dc4-s.dc4" not in wan_status(dc1)
        dc4.put(f"/v1/agent/join/127.0.0.1:{dc1.https_port}?wan=1")  # dc4 does not check names
        wait_for(lambda: wan_status(dc1).get("dc4-s.dc4") == FAILED, 10)
        status, _, body = dc1.request("GET", "/v1/kv/anything?dc=dc4")
        assert (status, body) == (500, b"No path to datacenter")
        wait_for(lambda: wan_status(dc4).get("dc1-s.dc1") == ALIVE, 10)  # dc1 is what it says


@pytest.mark.etcd
@pytest.mark.skipif(not etcd_available(), reason="etcd-server is not installed")
def test_one_join_federates_every_https_only_server_of_a_datacenter(
    dcs: tuple[AgentProcess, AgentProcess], certs: Certs, tmp_path: Path
) -> None:
    dc1, _ = dcs
    (tmp_path / "etcd").mkdir()
    with etcd_cluster(tmp_path / "etcd", members=1) as etcd:
        servers = [
            AgentProcess(
                [
                    *(
                        "-server",
                        "-store",
                        etcd.url,
                        "-bind",
                        "127.0.0.1",
                        "-data-dir",
                        str(tmp_path / f"s{i}"),
                    ),
                    *https_args(certs, "dc3", f"dc3-s{i}"),
                ],
                tls=certs.client_context("cli"),
                log_path=tmp_path / f"s{i}.log",
            )
            for i in (1, 2)
        ]
        with servers[0] as s1, servers[1] as s2:
            dc1.put(f"/v1/agent/join/127.0.0.1:{s1.https_port}?wan=1")
            both = {"dc3-s1.dc3": ALIVE, "dc3-s2.dc3": ALIVE}
            wait_for(lambda: both.items() <= wan_status(dc1).items(), 15)
            wait_for(lambda: wan_status(s2).get("dc1-s.dc1") == ALIVE, 15)
            s2.put("/v1/kv/from-s2", b"dc3")
            # The server the read is forwarded to may be the other one, whose copy follows
            # etcd's watch a moment behind the write (a default-mode read, not ?consistent).
            wait_for(lambda: dc1.request("GET", "/v1/kv/from-s2?dc=dc3&raw")[2] == b"dc3", 10)
