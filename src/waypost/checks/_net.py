"""Socket plumbing shared by the network check types, worded the way Go's net package is.

Users grep check Output for Go's phrases ("connect: connection refused"), so the
error text is reproduced rather than Python's "[Errno 111] Connect call failed".
"""

from __future__ import annotations

import os
import ssl
from functools import cache

__all__ = ["describe_error", "dial_error", "split_host_port", "tls_context"]


def split_host_port(address: str) -> tuple[str, int]:
    """Go's ``net.SplitHostPort`` for "host:port" and "[v6]:port"; ValueError in Go's words."""
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"address {address}: missing port in address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"address {address}: too many colons in address")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"address {address}: invalid port")
    return host, int(port)


def describe_error(exc: BaseException) -> str:
    """The tail of a Go network error for ``exc`` ("connection refused", "tls: ...")."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {exc.reason or exc}".lower()
    if isinstance(exc, OSError) and exc.errno:
        # asyncio rewrites strerror ("Connect call failed ..."); the errno is what Go prints.
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    return str(exc) or type(exc).__name__


def dial_error(network: str, address: str, exc: BaseException) -> str:
    """Go's ``net.OpError`` for a failed dial; system call failures name the call, as Go does."""
    syscall = (
        "connect: " if isinstance(exc, OSError) and exc.errno and not isinstance(exc, ssl.SSLError) else ""
    )
    return f"dial {network} {address}: {syscall}{describe_error(exc)}"


@cache
def tls_context(skip_verify: bool, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """One context per (verify, ALPN) pair, shared by every check: building one is costly."""
    context = ssl.create_default_context()
    if skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context
