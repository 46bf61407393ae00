"""Client agents' replica streams on a server: each revision cut once for all readers.

A lean client's replica (``agent.lean.replica_scope``) holds the whole membership, so
every join, restart and lapsed lease is in every client's scope. Answered as long polls,
each such change cost a server one HTTP request, one scope cut and one encoding per
client (about 80 us each: at 5,000 clients a restart kept a core busy for a second, and
every other delivery waited behind it). Here readers are indexed by their scope entries,
so a revision is cut by looking its keys up, not by testing every reader's scope; readers
sent the same events share one encoded frame, and a revision none of whose keys any
reader holds costs nothing per reader.

No I/O: the adapter (``api.internal.stream``) writes what a reader ``take``s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence

from waypost.store import wire
from waypost.store.base import Event

__all__ = ["LIMIT", "ReplicaFeed", "ReplicaReader"]

LIMIT = 4 << 20
"""Bytes a reader may fall behind by before it is cut off: a client that stopped reading
resumes from its revision on reconnecting, so nothing is lost by dropping it."""


class ReplicaReader:
    """One client's stream: the frames it has yet to be sent. ``wake`` is called whenever
    there is something new to ``take``."""

    __slots__ = ("_cost", "_pending", "closed", "cut", "heard", "limit", "scope", "start", "wake")

    def __init__(self, scope: Sequence[str], start: int = 0, limit: int = LIMIT) -> None:
        self.scope = tuple(scope)
        self.start = start
        """The first revision the client lacks: one that moved to a server still behind the
        last one it heard from is not sent again what it already holds."""
        self.limit = limit
        self.wake: Callable[[], None] = _nothing
        self.cut = False
        """Fell more than ``limit`` behind: the connection should be dropped."""
        self.closed = False
        self.heard = False
        """Sent a frame since the last ``ReplicaFeed.tick``."""
        self._pending: deque[bytes] = deque()
        self._cost = 0

    def push(self, frame: bytes) -> None:
        if self.closed:
            return
        self.heard = True
        self._cost += len(frame)
        if self._cost > self.limit:
            self.cut = True
            self.close()
        else:
            self._pending.append(frame)
        self.wake()

    def take(self) -> bytes:
        """Every frame waiting, joined; empty when none is."""
        if not self._pending:
            return b""
        out = b"".join(self._pending)
        self._pending.clear()
        self._cost = 0
        return out

    def close(self) -> None:
        self.closed = True
        self._pending.clear()
        self._cost = 0


def _nothing() -> None:
    return None


class ReplicaFeed:
    """Every reader of one server, by scope entry: an entry ending in ``/`` is a prefix,
    any other one exact key (``wire.in_scope``)."""

    def __init__(self, revision: int = 0) -> None:
        self.revision = revision
        """The last revision published: every reader has been given all it holds up to it."""
        self._exact: dict[str, set[ReplicaReader]] = {}
        self._prefix: dict[str, set[ReplicaReader]] = {}
        self._readers: set[ReplicaReader] = set()
        self._progress = (-1, b"")
        self.cut_off = 0
        """Readers dropped for falling more than their limit behind, since start-up."""

    def __len__(self) -> int:
        return len(self._readers)

    def add(self, reader: ReplicaReader) -> None:
        self._readers.add(reader)
        for entry in reader.scope:
            table = self._prefix if entry.endswith("/") else self._exact
            table.setdefault(entry, set()).add(reader)

    def remove(self, reader: ReplicaReader) -> None:
        self._readers.discard(reader)
        for entry in reader.scope:
            table = self._prefix if entry.endswith("/") else self._exact
            readers = table.get(entry)
            if readers is not None:
                readers.discard(reader)
                if not readers:
                    del table[entry]

    def publish(self, revision: int, batch: Sequence[Event]) -> None:
        """One applied revision to every reader holding any of its keys."""
        self.revision = revision
        if not self._readers:
            return
        picked: dict[ReplicaReader, list[int]] = {}
        for i, ev in enumerate(batch):
            for reader in self._readers_of(ev.kv.key):
                found = picked.get(reader)
                if found is None:
                    picked[reader] = [i]
                elif found[-1] != i:
                    found.append(i)
        frames: dict[tuple[int, ...], bytes] = {}
        for reader, positions in picked.items():
            if revision < reader.start:
                continue
            cut = tuple(positions)
            frame = frames.get(cut)
            if frame is None:
                frame = frames[cut] = wire.encode_frame(revision, [tuple(batch[i] for i in cut)])
            reader.push(frame)

    def _readers_of(self, key: str) -> Iterable[ReplicaReader]:
        found: list[set[ReplicaReader]] = []
        exact = self._exact.get(key)
        if exact:
            found.append(exact)
        if self._prefix:
            pos = key.find("/")
            while pos != -1:
                readers = self._prefix.get(key[: pos + 1])
                if readers:
                    found.append(readers)
                pos = key.find("/", pos + 1)
        if len(found) == 1:
            return found[0]
        return set().union(*found)

    def tick(self) -> None:
        """Bring every reader sent nothing since the last tick to ``revision``, with one
        frame of no events shared by all, so that a client none of whose keys change still
        moves on (and knows its server is alive). One pass every few seconds costs less than
        a timer per reader re-armed on every frame."""
        if self._progress[0] != self.revision:
            self._progress = (self.revision, wire.encode_frame(self.revision, []))
        frame = self._progress[1]
        for reader in list(self._readers):
            if not reader.heard:
                reader.push(frame)
            reader.heard = False

    def close_all(self) -> None:
        """End every stream (the server's history was reset: each reader must start again
        from a whole read, which its reconnection tells it, 410)."""
        readers, self._readers = self._readers, set()
        self._exact.clear()
        self._prefix.clear()
        for reader in readers:
            reader.close()
            reader.wake()
