"""The in-process store behind ``waypost agent -dev``: etcd's semantics, nothing on disk."""

from __future__ import annotations

import time

from waypost.store.history import DEFAULT_HISTORY
from waypost.store.keyspace import Keyspace
from waypost.store.local import Clock, LocalStore

__all__ = ["MemoryStore"]


class MemoryStore(LocalStore):
    """Starts at revision 1, the empty store, so the first write gets revision 2 as in etcd."""

    def __init__(self, *, clock: Clock = time.monotonic, history_limit: int = DEFAULT_HISTORY) -> None:
        super().__init__(Keyspace(), clock=clock, first_available=1, history_limit=history_limit)
