"""``waypost acl``: the real command line against a real default-deny agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import run_cli

from acl_kit import ROOT, start_acl_agent
from waypost.testing import AgentProcess


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    with start_acl_agent(tmp_path_factory.mktemp("acl-cli")) as running:
        yield running


def acl(agent: AgentProcess, *args: str, token: str = ROOT, stdin: str | None = None) -> tuple[int, str, str]:
    result = run_cli(agent, "acl", *args, env={"CONSUL_HTTP_TOKEN": token}, stdin=stdin)
    return result.code, result.out, result.err


def test_policy_token_role_round_trip(agent: AgentProcess, tmp_path: Path) -> None:
    rules = tmp_path / "rules.hcl"
    rules.write_text('key_prefix "app/" { policy = "write" }')
    code, out, err = acl(agent, "policy", "create", "-name", "app", "-rules", f"@{rules}")
    assert code == 0, err
    assert "Name:         app" in out
    assert 'key_prefix "app/"' in out
    code, out, err = acl(agent, "role", "create", "-name", "app-role", "-policy-name", "app")
    assert code == 0, err
    role_id = out.splitlines()[0].split()[-1]
    code, out, err = acl(
        agent, "token", "create", "-description", "cli", "-role-name", "app-role", "-format", "json"
    )
    assert code == 0, err
    token = json.loads(out)
    assert token["Roles"] == [{"ID": role_id, "Name": "app-role"}]
    code, out, _ = acl(agent, "token", "read", "-self", token=token["SecretID"])
    assert f"AccessorID:       {token['AccessorID']}" in out
    assert f"   {role_id} - app-role" in out
    assert run_cli(agent, "kv", "put", "app/x", "1", env={"CONSUL_HTTP_TOKEN": token["SecretID"]}).code == 0
    code, out, _ = acl(agent, "token", "list")
    assert token["AccessorID"] in out
    assert acl(agent, "policy", "read", "-name", "app")[0] == 0
    assert "app" in acl(agent, "policy", "list")[1]
    assert acl(agent, "role", "list")[1].count("app-role") == 1
    code, out, _ = acl(agent, "token", "delete", "-id", token["AccessorID"])
    assert (code, out.strip()) == (0, f'Token "{token["AccessorID"]}" deleted successfully')
    assert acl(agent, "role", "delete", "-name", "app-role")[0] == 0
    assert acl(agent, "policy", "delete", "-name", "app")[1].strip() == 'Policy "app" deleted successfully'


def test_errors_name_what_failed(agent: AgentProcess) -> None:
    code, _, err = acl(
        agent, "policy", "create", "-name", "bad", "-rules", '\nkey "a" { policy = "sometimes" }'
    )
    assert code == 1
    assert err.startswith("Failed to create new policy: Unexpected response code: 400")
    assert "(line 2)" in err
    code, _, err = acl(agent, "token", "list", token="")
    assert code == 1
    assert "Permission denied" in err
    code, _, err = acl(agent, "bootstrap")
    assert code == 1
    assert "ACL bootstrap no longer allowed" in err
    code, _, err = acl(agent, "policy", "read")
    assert (code, "Must specify the -id parameter" in err) == (1, True)
    assert acl(agent, "nonsense")[0] == 1


def test_set_agent_token(agent: AgentProcess) -> None:
    code, out, _ = acl(agent, "set-agent-token", "replication", "some-secret")
    assert (code, out.strip()) == (0, 'ACL token "replication" set successfully')
    code, _, err = acl(agent, "set-agent-token", "nonsense", "x")
    assert code == 1
    assert err.startswith("Failed setting token: Unexpected response code: 404")
    assert acl(agent, "set-agent-token", "dns")[0] == 1
