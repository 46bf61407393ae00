"""Which HTTP connections to a server are client agents relaying their callers' requests.

A lean client agent relays every registry request, blocking queries included, to a
server's HTTP API, one parked connection per parked query. Consul's client agents
multiplex their RPCs over one connection that ``limits.http_max_conns_per_client`` never
sees, so a client agent with a few hundred local watchers must not be cut off at 200 here
either. A server therefore does not count a connection towards that cap when both:

- its peer address is the address of a LAN member of this cluster that has not left
  (the members table, as ``agent/members`` lists it), and
- its first request carries the relay marker (``FORWARDED_HEADER: client``), which the
  agents' ``Forwarder`` sets on everything it relays;
- and, when the HTTPS listener verifies client certificates, the connection presented a
  verified certificate naming a server or client agent of this datacenter.

Threat model. A caller on a host that is not a member cannot pass: the marker alone
changes nothing, and TCP does not let it borrow a member's address (short of being on
the path to spoof both directions). A process on a member's own host can send the marker
from that address, so without verified certificates it is trusted as far as the agent
beside it; it still needs a token for whatever it asks (ACLs apply to relays as to
anyone). Where that is not acceptable, ``verify_incoming`` on the HTTPS listener turns
the exemption into proof of the agent's private key. Callers past the cap from a non-member
address are still refused on connect, before anything is read, as Consul's limiter does;
one from a member's address is refused at its first request unless it is a relay (so a
process on a member's host may hold such a connection until ``read_header_timeout``).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from waypost.wan.forward import CLIENT_HOP, FORWARDED_HEADER

if TYPE_CHECKING:
    from waypost.agent.agent import Agent

__all__ = ["AgentRelays"]

_MARKER = FORWARDED_HEADER.lower()


class AgentRelays:
    """The ``api.http.Relays`` rule of a server agent."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def member(self, address: str, names: frozenset[str]) -> bool:
        agent = self._agent
        tls, state = agent.tls, agent.state
        if state is None:
            return False
        https = tls.https if tls is not None else None
        if https is not None and https.verify_mode == ssl.CERT_REQUIRED:
            assert tls is not None  # https is one of its contexts
            if tls.agent_names.isdisjoint(names):
                return False
        return any(m.Addr == address and not m.Left for m in state.indexes.members.values())

    def relayed(self, headers: dict[str, str]) -> bool:
        return headers.get(_MARKER) == CLIENT_HOP
