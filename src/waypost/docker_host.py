"""Reaching a Docker Engine API as the docker CLI does: ``$DOCKER_HOST``, ``unix://`` or ``tcp://``.

Shared by the agent's Docker checks and the registrator, which talk to the same kind of
daemon (Docker, or podman's API service) and must read the variable the same way.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import aiohttp

__all__ = ["DEFAULT_DOCKER_HOST", "EngineEndpoint"]

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


class EngineEndpoint:
    """Where an engine listens; ValueError, in the docker CLI's words, for an unknown scheme."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        parts = urlsplit(self.host)
        if parts.scheme == "unix":
            self._socket, self.base = parts.path, "http://docker"
        elif parts.scheme == "tcp":
            self._socket, self.base = "", f"http://{parts.netloc}{parts.path}"
        else:
            raise ValueError(f"unable to parse docker host `{self.host}`")

    def session(self) -> aiohttp.ClientSession:
        """A new session to the engine; request paths go after ``base``."""
        connector: aiohttp.BaseConnector = (
            aiohttp.UnixConnector(path=self._socket) if self._socket else aiohttp.TCPConnector()
        )
        return aiohttp.ClientSession(connector=connector, trust_env=False)
