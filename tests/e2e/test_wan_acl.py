"""ACLs across two federated datacenters (each a dev server with its own store, default
deny): the secondary copies the primary's policies and global tokens, sends its global
ACL writes to the primary, keeps its local tokens, and reports replication running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from acl_kit import ACL_CONFIG, ROOT, Caller
from waypost.testing import AgentProcess, wait_for

REPLICATION = "0b1c2d3e-0000-4000-8000-000000000001"
FAST_WAN = 'gossip_wan {\n probe_interval = "200ms"\n probe_timeout = "1s"\n suspicion_mult = 3\n}'


@pytest.fixture(scope="module")
def dcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Caller, Caller]]:
    base = Path(tmp_path_factory.mktemp("wan-acl"))
    primary_acl = ACL_CONFIG.format(root=ROOT, tokens="")
    args = ["-dev", "-node", "p1", "-datacenter", "dc1", "-hcl", primary_acl, "-hcl", FAST_WAN]
    with AgentProcess(args, log_path=base / "dc1.log") as primary:
        call1 = Caller(primary)
        status, policy, _ = call1(
            "PUT",
            "/v1/acl/policy",
            {"Name": "replication", "Rules": 'acl = "write"\noperator = "write"'},
            ROOT,
        )
        assert status == 200, policy
        token = {"SecretID": REPLICATION, "Policies": [{"Name": "replication"}]}
        assert call1("PUT", "/v1/acl/token", token, ROOT)[0] == 200
        secondary_acl = ACL_CONFIG.replace('initial_management = "{root}"', "").format(
            tokens=f'replication = "{REPLICATION}"'
        )
        args = [
            *("-dev", "-node", "s1", "-datacenter", "dc2", "-hcl", secondary_acl, "-hcl", FAST_WAN),
            *(
                "-hcl",
                'primary_datacenter = "dc1"',
                "-retry-join-wan",
                primary.address,
                "-retry-interval-wan",
                "1s",
            ),
        ]
        with AgentProcess(args, log_path=base / "dc2.log") as secondary:
            yield call1, Caller(secondary)


def test_the_secondary_copies_the_primarys_policies_and_global_tokens(dcs: tuple[Caller, Caller]) -> None:
    call1, call2 = dcs
    wait_for(lambda: call2("GET", "/v1/acl/token/self", token=ROOT)[0] == 200, 20)
    names = {p["Name"] for p in call2("GET", "/v1/acl/policies", token=ROOT)[1]}
    assert names == {"global-management", "replication"}
    status, body, _ = call2("GET", "/v1/acl/replication")
    assert status == 200
    assert (body["Enabled"], body["Running"], body["SourceDatacenter"], body["ReplicationType"]) == (
        True, True, "dc1", "tokens",
    )  # fmt: skip
    assert body["ReplicatedIndex"] > 0
    web = {"Name": "web-read", "Rules": 'service "web" { policy = "read" }'}
    assert call1("PUT", "/v1/acl/policy", web, ROOT)[0] == 200
    wait_for(lambda: call2("GET", "/v1/acl/policy/name/web-read", token=ROOT)[0] == 200, 10)


def test_global_acl_writes_in_the_secondary_go_to_the_primary_local_tokens_stay(
    dcs: tuple[Caller, Caller],
) -> None:
    call1, call2 = dcs
    status, policy, _ = call2(
        "PUT", "/v1/acl/policy", {"Name": "from-dc2", "Rules": 'key "" { policy = "read" }'}, ROOT
    )
    assert status == 200, policy
    assert call1("GET", f"/v1/acl/policy/{policy['ID']}", token=ROOT)[0] == 200
    wait_for(lambda: call2("GET", f"/v1/acl/policy/{policy['ID']}", token=ROOT)[0] == 200, 10)
    status, local, _ = call2(
        "PUT", "/v1/acl/token", {"Local": True, "Policies": [{"Name": "from-dc2"}]}, ROOT
    )
    assert status == 200, local
    assert local["Local"] is True
    assert call2("GET", f"/v1/acl/token/{local['AccessorID']}", token=ROOT)[0] == 200
    assert call1("GET", f"/v1/acl/token/{local['AccessorID']}", token=ROOT)[0] != 200
    status, global_token, _ = call2("PUT", "/v1/acl/token", {"Policies": [{"Name": "from-dc2"}]}, ROOT)
    assert status == 200, global_token
    assert call1("GET", f"/v1/acl/token/{global_token['AccessorID']}", token=ROOT)[0] == 200
    wait_for(lambda: call2("GET", "/v1/acl/token/self", token=global_token["SecretID"])[0] == 200, 10)
