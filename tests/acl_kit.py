"""ACL test helpers: a real agent with ACLs on and default deny, and a caller that sends a token."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from waypost.testing import AgentProcess, wait_for

ROOT = "root-secret-0000"
ACL_CONFIG = """
acl {{
  enabled = true
  default_policy = "deny"
  tokens {{
    initial_management = "{root}"
    {tokens}
  }}
}}
"""


class Caller:
    """HTTP (HTTPS for an agent started with a TLS context) against one agent; ``token``
    goes in X-Consul-Token."""

    def __init__(self, agent: AgentProcess) -> None:
        self.agent = agent

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        status, raw, got = self.raw(method, path, data, token, headers)
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            value = raw.decode(errors="replace")
        return status, value, got

    def raw(
        self,
        method: str,
        path: str,
        data: bytes | None,
        token: str | None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """(status, body bytes, headers), whatever the status."""
        req = urllib.request.Request(self.agent.url + path, data=data, method=method)
        if token is not None:
            req.add_header("X-Consul-Token", token)
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.agent.tls) as resp:
                return resp.status, resp.read(), dict(resp.headers.items())
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers.items())

    def ok(self, method: str, path: str, body: Any = None, token: str | None = ROOT) -> Any:
        status, value, _ = self(method, path, body, token)
        assert status == 200, (method, path, status, value)
        return value

    def token_for(self, rules: str, name: str) -> str:
        """A fresh token holding one policy with ``rules``, once this agent resolves it: a
        client agent's own endpoints resolve tokens from its copy of the ACL tables, which
        trails the servers' by the moment the change takes to reach it."""
        self.ok("PUT", "/v1/acl/policy", {"Name": name, "Rules": rules})
        secret = str(self.ok("PUT", "/v1/acl/token", {"Policies": [{"Name": name}]})["SecretID"])
        wait_for(lambda: self("GET", "/v1/agent/services", token=secret)[1] != "ACL not found", 10)
        return secret


class _AclAgent(AgentProcess):
    def start(self, timeout: float = 20.0) -> AgentProcess:
        """Started once the root token resolves: the leader writes the initial management
        token just after it is elected, as Consul's does, so a leader alone is not enough."""
        super().start(timeout)
        wait_for(lambda: Caller(self)("GET", "/v1/acl/token/self", token=ROOT)[0] == 200)
        return self


def start_acl_agent(tmp: Path, tokens: str = "", args: tuple[str, ...] = ()) -> AgentProcess:
    """``tokens``: more lines for the ``acl.tokens`` block (``dns = "..."``)."""
    config = tmp / "acl.hcl"
    config.write_text(ACL_CONFIG.format(root=ROOT, tokens=tokens))
    return _AclAgent(
        ["-dev", "-node", "acl-node", "-config-file", str(config), *args], log_path=tmp / "agent.log"
    )
