"""Listener ports that would sit idle, and the ones waypost cannot serve at all.

waypost serves HTTP, HTTPS (once ``tls.https`` has a certificate, ``tls.defaults``
included) and DNS. A port for anything else must not pass silently: an operator
would think it serves. Where the operator clearly means it to serve, the agent
refuses to start and names the key: ``ports.grpc_tls`` with any certificate, and
``ports.https`` whose certificate would come from auto-encrypt or auto-config,
which waypost does not implement. Without a certificate Consul itself cannot
complete a handshake on a TLS port, so the port is idle there too: a warning is
enough. HashiCorp's API test harness (``sdk/testutil``) writes exactly that, every
port set and no certificate, and such configs must keep starting. Plain
``ports.grpc`` carries the service mesh's xDS, peering and dataplane traffic,
features waypost accepts and ignores like the ``connect`` section (``-dev`` sets
it too), so it is a warning as well.

Only ports that a file, flag or -hcl snippet sets are reported; the -dev
defaults are waypost's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from waypost.config.errors import ConfigError
from waypost.config.model import AgentConfig
from waypost.config.sources import Source

__all__ = ["unserved_ports"]

#: Settings that give an agent a certificate waypost cannot obtain.
_AUTO_TLS = ("auto_encrypt.tls", "auto_config.enabled")

#: Settings that give the gRPC over TLS listener a certificate.
_GRPC_TLS = (
    "cert_file",
    "tls.defaults.cert_file",
    "tls.grpc.cert_file",
    "tls.grpc.use_auto_cert",
    *_AUTO_TLS,
)


def unserved_ports(cfg: AgentConfig, sources: Sequence[Source]) -> list[str]:
    """Warnings for the idle ports ``sources`` set; raises ConfigError for a port meant to
    serve what waypost cannot."""
    warnings = []
    if cfg.ports.https > 0 and _set_in(sources, "ports.https") and not cfg.tls.https.cert_file:
        automatic = _first_set(sources, _AUTO_TLS)
        if automatic is not None:
            raise ConfigError(
                f"ports.https: {automatic} would give HTTPS a certificate, but waypost has no "
                "auto-encrypt or auto-config; set tls.https.cert_file and tls.https.key_file"
            )
        warnings.append(
            f"ports.https = {cfg.ports.https}: no TLS certificate is configured and waypost does not serve "
            "HTTPS; nothing listens on this port"
        )
    if cfg.ports.grpc_tls > 0 and _set_in(sources, "ports.grpc_tls"):
        certificate = _first_set(sources, _GRPC_TLS)
        if certificate is not None:
            raise ConfigError(
                f"ports.grpc_tls: waypost does not serve gRPC over TLS, yet {certificate} configures a "
                "certificate for it; set ports.grpc_tls = -1"
            )
        warnings.append(
            f"ports.grpc_tls = {cfg.ports.grpc_tls}: no TLS certificate is configured and waypost does not "
            "serve gRPC over TLS; nothing listens on this port"
        )
    if cfg.ports.grpc > 0 and _set_in(sources, "ports.grpc"):
        warnings.append(
            f"ports.grpc = {cfg.ports.grpc}: waypost has no gRPC interface (xDS, peering, dataplane); "
            "nothing listens on this port"
        )
    return warnings


def _first_set(sources: Sequence[Source], paths: Sequence[str]) -> str | None:
    return next((path for path in paths if _set_in(sources, path)), None)


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
