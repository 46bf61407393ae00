"""``tls.internal_rpc.verify_server_hostname`` across the WAN: a server of datacenter ``dc``
must present a certificate for ``server.<dc>.<domain>``, as Consul checks on WAN RPC, so a
peer holding a certificate of this CA for another name (a client agent's, another
datacenter's) is refused. Requests to a server of a known datacenter ask TLS for that name
(``server_hostname``); a WAN join does not know the datacenter yet, so it first reads the
name off the peer's certificate, before sending anything (token, server list) over it."""

from __future__ import annotations

import asyncio
import re
import ssl
from urllib.parse import urlsplit

__all__ = ["certificate_datacenter", "server_name"]


def server_name(dc: str, domain: str) -> str:
    return f"server.{dc}.{domain.strip('.')}".lower()


async def certificate_datacenter(url: str, context: ssl.SSLContext, domain: str) -> str:
    """The datacenter named by the ``server.<dc>.<domain>`` certificate the HTTPS server at
    ``url`` presents; ``context`` checks it against the CA but not its name. Raises
    ValueError when the certificate names no server, OSError when the server cannot be
    reached; the caller bounds the wait."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.hostname is None:
        raise ValueError(f"{url} is not HTTPS: verify_server_hostname needs TLS")
    _, writer = await asyncio.open_connection(parts.hostname, parts.port or 443, ssl=context)
    cert = writer.get_extra_info("peercert") or {}
    writer.close()
    pattern = re.compile(rf"server\.([a-z0-9_-]+)\.{re.escape(domain.strip('.').lower())}")
    names = [str(value).lower() for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
    for name in names:
        found = pattern.fullmatch(name)
        if found:
            return found.group(1)
    raise ValueError(f"{url} presents a certificate for {', '.join(names) or 'no name'}, not a server's")
