"""WAN federation over HTTPS only: two datacenters whose agents serve no plain HTTP and
demand client certificates (verify_incoming) probe each other and forward ``?dc=`` over
mTLS with the certificates of ``waypost tls`` (verify_outgoing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tls_certs import Certs, make_certs
from waypost.testing import AgentProcess, wait_for

FAST_WAN = 'gossip_wan {\n probe_interval = "200ms"\n probe_timeout = "1s"\n suspicion_mult = 3\n}'


def https_agent(certs: Certs, dc: str, log: Path) -> AgentProcess:
    tls = certs.hcl("defaults", "server", verify_incoming=True, verify_outgoing=True)
    args = ["-dev", "-node", f"{dc}-s", "-datacenter", dc, "-hcl", tls, "-hcl", "ports { http = -1 }"]
    return AgentProcess([*args, "-hcl", FAST_WAN], tls=certs.client_context("cli"), log_path=log)


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, AgentProcess]]:
    base = Path(tmp_path_factory.mktemp("wan-tls"))
    certs = make_certs(base / "certs")
    with (
        https_agent(certs, "dc1", base / "dc1.log") as dc1,
        https_agent(certs, "dc2", base / "dc2.log") as dc2,
    ):
        yield dc1, dc2


def test_servers_federate_and_forward_over_mtls(dcs: tuple[AgentProcess, AgentProcess]) -> None:
    dc1, dc2 = dcs
    dc1.put(f"/v1/agent/join/127.0.0.1:{dc2.https_port}?wan=1")
    wait_for(
        lambda: (
            {m["Name"]: m["Status"] for m in dc2.get("/v1/agent/members?wan=1")}
            == {"dc1-s.dc1": 1, "dc2-s.dc2": 1}
        ),
        10,
    )
    dc1.put("/v1/kv/over-tls?dc=dc2", b"secret")
    assert dc2.request("GET", "/v1/kv/over-tls?raw")[2] == b"secret"
    assert dc2.request("GET", "/v1/kv/over-tls?dc=dc1")[0] == 404
    assert dc1.get("/v1/catalog/datacenters") == ["dc1", "dc2"]
