"""The asyncio client of waypost's (Consul's) HTTP API, shared by the tools around the registry.

The registrator, the sidekick, the template daemon and the proxy talk to an agent exactly as a
third-party tool would, through this package only; they never import the agent's internals.
"""

from waypost.client.api import (
    AgentAddress,
    ApiClient,
    ApiError,
    ApiResponse,
    Backoff,
)

__all__ = ["AgentAddress", "ApiClient", "ApiError", "ApiResponse", "Backoff"]
