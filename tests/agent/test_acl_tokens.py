"""The agent's own tokens: config first, replaced at run time, kept across restarts only
with enable_token_persistence, and an unreadable file never stops the agent."""

from __future__ import annotations

from pathlib import Path

from waypost.agent.acl_tokens import AgentTokens
from waypost.config.model import ACL, ACLTokens


def test_tokens_start_from_the_config_and_are_replaced(tmp_path: Path) -> None:
    tokens = AgentTokens(ACL(tokens=ACLTokens(default="d", dns="n")), str(tmp_path))
    assert (tokens.get("default"), tokens.get("dns"), tokens.get("agent")) == ("d", "n", "")
    tokens.set("default", "d2")
    assert tokens.get("default") == "d2"
    assert not (tmp_path / "acl-tokens.json").exists()
    assert AgentTokens(ACL(tokens=ACLTokens(default="d")), str(tmp_path)).get("default") == "d"


def test_persisted_tokens_survive_a_restart(tmp_path: Path) -> None:
    config = ACL(enable_token_persistence=True, tokens=ACLTokens(default="from-config"))
    AgentTokens(config, str(tmp_path)).set("agent", "a-secret")
    again = AgentTokens(config, str(tmp_path))
    assert (again.get("agent"), again.get("default")) == ("a-secret", "from-config")
    assert (tmp_path / "acl-tokens.json").stat().st_mode & 0o777 == 0o600


def test_an_unreadable_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "acl-tokens.json").write_text("{not json")
    config = ACL(enable_token_persistence=True, tokens=ACLTokens(default="d"))
    assert AgentTokens(config, str(tmp_path)).get("default") == "d"
    (tmp_path / "acl-tokens.json").write_text('["a list"]')
    assert AgentTokens(config, str(tmp_path)).get("default") == "d"
