"""The agent's TLS: which listeners serve it, how client agents reach servers, and reload.

Contexts are built from the loaded configuration before anything listens, so a missing
or unreadable certificate stops start-up with a message naming it. On reload the new
settings are first built into throw-away contexts, and only when all of them load are
they applied to the live ones in place (see ``waypost.tlsutil``): a bad certificate on
reload leaves the agent serving the old one.
"""

from __future__ import annotations

import ssl

from waypost.config import AgentConfig
from waypost.store.remote import ServerTLS
from waypost.tlsutil import configure_client, configure_server, outgoing_context, server_context

__all__ = ["AgentTLS"]


class AgentTLS:
    def __init__(self, config: AgentConfig) -> None:
        tls = config.tls
        #: The HTTPS listener's context; None when ports.https is off or has no certificate.
        self.https = (
            server_context(tls.https, "tls.https") if config.ports.https > 0 and tls.https.cert_file else None
        )
        #: The agent-to-server listener's, on servers with an internal_rpc certificate.
        self.internal = (
            server_context(tls.internal_rpc, "tls.internal_rpc")
            if config.server and tls.internal_rpc.cert_file
            else None
        )
        #: How this agent dials servers; None for plain HTTP (no verify_outgoing).
        self.servers = _server_tls(config)
        domain = config.domain.strip(".").lower()
        #: The names ``tls cert create -server`` and ``-client`` give agents' certificates.
        self.agent_names = frozenset(
            f"{kind}.{config.datacenter.lower()}.{domain}" for kind in ("server", "client")
        )

    def verified_agent(self, peer_names: frozenset[str]) -> bool:
        """Whether a caller on the agent-to-server listener is an agent by its certificate,
        which then stands in for the agent token: the listener verifies client certificates
        now (read live, so a reload that turns ``verify_incoming`` off takes this away), and
        the verified certificate names a server or client agent of this datacenter exactly.
        A ``-cli`` certificate (``cli.<dc>.<domain>``) or another datacenter's is no agent."""
        context = self.internal
        return (
            context is not None
            and context.verify_mode == ssl.CERT_REQUIRED
            and not self.agent_names.isdisjoint(peer_names)
        )

    def reload(self, config: AgentConfig) -> None:
        """Apply ``config``'s certificates to the live contexts; raises TLSSetupError (and
        changes nothing) if any of them does not load. A listener or TLS towards servers
        that was off at start stays off until a restart."""
        fresh = AgentTLS(config)  # loads every file, so errors surface before any change
        tls = config.tls
        if self.https is not None and fresh.https is not None:
            configure_server(self.https, tls.https, "tls.https")
        if self.internal is not None and fresh.internal is not None:
            configure_server(self.internal, tls.internal_rpc, "tls.internal_rpc")
        if self.servers is not None and fresh.servers is not None:
            check = self.servers.context.check_hostname
            configure_client(self.servers.context, tls.internal_rpc, "tls.internal_rpc", check_hostname=check)


def _server_tls(config: AgentConfig) -> ServerTLS | None:
    """Consul's ``verify_outgoing``: TLS to servers, their certificate checked against the
    CA; with ``verify_server_hostname`` also its name, ``server.<datacenter>.<domain>``."""
    rpc = config.tls.internal_rpc
    if not (rpc.verify_outgoing or rpc.verify_server_hostname):
        return None
    context: ssl.SSLContext = outgoing_context(
        rpc, "tls.internal_rpc", check_hostname=rpc.verify_server_hostname
    )
    if not rpc.verify_server_hostname:
        return ServerTLS(context)
    return ServerTLS(context, f"server.{config.datacenter}.{config.domain.strip('.')}")
