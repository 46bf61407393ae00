"""Errors raised while loading the agent configuration."""

from __future__ import annotations

__all__ = ["ConfigError", "FlagError"]


class ConfigError(Exception):
    """The configuration cannot be used; the message is meant for the operator as is.

    ``source`` names the file (or "flags", "dev", "flags-0.hcl") the problem
    was found in, when it belongs to one; cross-setting problems have none.
    """

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(f"failed to parse {source}: {message}" if source else message)
        self.source = source


class FlagError(ConfigError):
    """The command line itself is wrong; like ``consul agent`` the CLI prints usage and exits 1."""
