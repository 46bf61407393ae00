"""Store backends behind one ``Store`` protocol, chosen by URL.

``memory://`` keeps everything in the process (``-dev``); ``sqlite:///path/file.db``
(or ``sqlite:///path/dir`` for a data directory) keeps it durably on one machine;
``etcd://host:port,host:port`` shares it through an etcd cluster, and
``etcds://host:port,...`` does so over TLS with the agent's ``tls.store`` settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from waypost.store.base import Store

if TYPE_CHECKING:
    from waypost.config import model

__all__ = ["DATA_DIR_FILE", "open_store"]

DATA_DIR_FILE = "store.db"
"""The database's name when a sqlite URL names a data directory."""


def open_store(url: str, tls: model.TLSProtocol | None = None) -> Store:
    """Build the store ``url`` names. Backends connect or load synchronously here (sqlite
    reads its database now; etcd connects on first use), so this is safe before the
    event loop runs. Backends are imported here so that a ``-dev`` agent never loads gRPC."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"store URL {url!r} has no scheme (memory://, sqlite:///path, etcd://host:port)")
    if scheme == "memory":
        from waypost.store.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        from waypost.store.sqlite import SqliteStore

        if not rest:
            raise ValueError("sqlite URL needs a path: sqlite:///path/to/file.db")
        path = Path(rest)
        if path.is_dir():
            path = path / DATA_DIR_FILE
        return SqliteStore(path)
    if scheme in ("etcd", "etcds"):
        from waypost.config.model import TLSProtocol
        from waypost.store.etcd import EtcdStore
        from waypost.tlsutil import grpc_credentials

        endpoints = [e.strip() for e in rest.split(",") if e.strip()]
        if not endpoints:
            raise ValueError("etcd URL needs at least one host:port")
        if scheme == "etcd":
            return EtcdStore(endpoints)
        return EtcdStore(endpoints, credentials=grpc_credentials(tls or TLSProtocol(), "tls.store"))
    if scheme == "remote":
        from waypost.store.remote import RemoteStore

        return RemoteStore([e.strip() for e in rest.split(",") if e.strip()])
    raise ValueError(f"unknown store scheme {scheme!r}")
