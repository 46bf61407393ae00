"""This agent's own ACL tokens, shared by its HTTP API, its DNS answers and its joins.

They start from the ``acl.tokens`` settings; ``/v1/agent/token/:type`` replaces one for the
agent's life, and with ``acl.enable_token_persistence`` across restarts too, kept in
``data_dir/acl-tokens.json`` as Consul keeps them. Tokens are never logged.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from waypost.agent.persist import save_json
from waypost.config.model import ACL

__all__ = ["KINDS", "AgentTokens"]

log = logging.getLogger("waypost.agent.acl")

KINDS = ("default", "agent", "agent_recovery", "replication", "dns", "config_file_service_registration")
FILE_NAME = "acl-tokens.json"


class AgentTokens:
    def __init__(self, config: ACL, data_dir: str) -> None:
        self._tokens = {kind: str(getattr(config.tokens, kind)) for kind in KINDS}
        persist = config.enable_token_persistence and data_dir
        self._path = Path(data_dir) / FILE_NAME if persist else None
        if self._path is not None and self._path.exists():
            self._load(self._path)

    def _load(self, path: Path) -> None:
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.error("ignoring unreadable %s: %s", path, type(exc).__name__)
            return
        if not isinstance(saved, dict):
            log.error("ignoring %s: not a JSON object", path)
            return
        for kind in KINDS:
            value = saved.get(kind)
            if isinstance(value, str) and value:
                self._tokens[kind] = value

    def get(self, kind: str) -> str:
        return self._tokens[kind]

    def set(self, kind: str, secret: str) -> None:
        """Raises OSError when persistence is on and the file cannot be written."""
        self._tokens[kind] = secret
        if self._path is not None:
            save_json(self._path, self._tokens)
