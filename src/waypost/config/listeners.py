"""Listener ports Consul opens that waypost has no server for: HTTPS, gRPC and gRPC over TLS.

waypost answers HTTP and DNS only, so a port for anything else must not pass
silently: an operator would think it serves. Where the operator clearly means
it to serve, the agent refuses to start and names the key. That is the case for
``ports.https`` and ``ports.grpc_tls`` once a TLS certificate is configured.
Without a certificate Consul itself cannot complete a handshake on them, so the
port is idle there too: a warning is enough. HashiCorp's API test harness
(``sdk/testutil``) writes exactly that, every port set and no certificate, and
such configs must keep starting. Plain ``ports.grpc`` carries the service
mesh's xDS, peering and dataplane traffic, features waypost accepts and ignores
like the ``connect`` section (``-dev`` sets it too), so it is a warning as well.

Only ports that a file, flag or -hcl snippet sets are reported; the -dev
defaults are waypost's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from waypost.config.errors import ConfigError
from waypost.config.model import AgentConfig
from waypost.config.sources import Source

__all__ = ["unserved_ports"]

#: Settings that give an agent a certificate for every TLS listener.
_ANY_TLS = ("cert_file", "tls.defaults.cert_file", "auto_encrypt.tls", "auto_config.enabled")

#: TLS port -> (what it would serve, the settings that give it a certificate).
_TLS_PORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "https": ("HTTPS", (*_ANY_TLS, "tls.https.cert_file")),
    "grpc_tls": ("gRPC over TLS", (*_ANY_TLS, "tls.grpc.cert_file", "tls.grpc.use_auto_cert")),
}


def unserved_ports(cfg: AgentConfig, sources: Sequence[Source]) -> list[str]:
    """Warnings for the idle ports ``sources`` set; raises ConfigError for a TLS port with a certificate."""
    warnings = []
    for name, (what, certificate_keys) in _TLS_PORTS.items():
        port = getattr(cfg.ports, name)
        if port <= 0 or not _set_in(sources, f"ports.{name}"):
            continue
        certificate = next((key for key in certificate_keys if _set_in(sources, key)), None)
        if certificate is not None:
            raise ConfigError(
                f"ports.{name}: waypost does not serve {what}, yet {certificate} configures a certificate "
                f"for it; set ports.{name} = -1 and terminate TLS in front of the HTTP port"
            )
        warnings.append(
            f"ports.{name} = {port}: no TLS certificate is configured and waypost does not serve "
            f"{what}; nothing listens on this port"
        )
    if cfg.ports.grpc > 0 and _set_in(sources, "ports.grpc"):
        warnings.append(
            f"ports.grpc = {cfg.ports.grpc}: waypost has no gRPC interface (xDS, peering, dataplane); "
            "nothing listens on this port"
        )
    return warnings


def _set_in(sources: Sequence[Source], path: str) -> bool:
    """Whether any source sets ``path`` (dotted) to something other than null, false or ""."""
    return any(_lookup(source.data, path.split(".")) not in (None, False, "") for source in sources)


def _lookup(node: object, parts: list[str]) -> object:
    if not parts:
        return node
    # Repeated HCL blocks arrive as a list of objects; the last one setting the key wins.
    blocks = node if isinstance(node, list) else [node]
    found: object = None
    for block in blocks:
        if isinstance(block, Mapping) and parts[0] in block:
            value = _lookup(block[parts[0]], parts[1:])
            found = value if value is not None else found
    return found
