"""The seam to other datacenters: ``<service>.service.<dc>.<domain>`` and
``<node>.node.<dc>.<domain>`` for a datacenter this agent federates with are answered by a
server of that datacenter, the query relayed as it came, as Consul answers them through
the remote datacenter's catalog."""

from __future__ import annotations

from typing import Protocol

__all__ = ["RemoteDns"]


class RemoteDns(Protocol):
    def known(self, datacenter: str) -> bool:
        """Whether ``datacenter`` is another datacenter queries can be relayed to; a name in
        any other datacenter but this one is NXDOMAIN."""
        ...

    async def resolve(self, datacenter: str, query: bytes, tcp: bool) -> bytes | None:
        """The reply of a server of ``datacenter`` to ``query``; None (SERVFAIL) when none answers."""
        ...
