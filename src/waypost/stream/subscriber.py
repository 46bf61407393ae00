"""One reader of a topic: what it has yet to be sent, framed as server-sent events.

Pending work is kept as references to the topic's shared changes and snapshot, and framed
only when the connection can take more (``take``), so a thousand readers of one service
share one encoding. What a reader has not taken is bounded: once the live changes queued
for it pass ``limit`` bytes it is cut off (``cut``) rather than held in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Sequence

from waypost.state.indexes import Indexes
from waypost.stream.feed import DELETE, UPSERT, Change, Topic

__all__ = ["LIMIT", "Subscriber"]

LIMIT = 1 << 20
"""Bytes of live changes a reader may fall behind by before it is cut off."""

CHUNK = 64 * 1024
"""About how much one ``take`` frames: the unit the connection writes."""

Test = Callable[[Change], bool]


class _Snapshot:
    __slots__ = ("index", "new", "pos", "rows")

    def __init__(self, rows: Sequence[Change], index: int, new: bool) -> None:
        self.rows = rows
        self.index = index
        self.new = new
        self.pos = 0


class _Changes:
    __slots__ = ("changes", "cost")

    def __init__(self, changes: Sequence[Change]) -> None:
        self.changes = changes
        self.cost = sum(len(c.data) for c in changes)


_PING = b": ping\n\n"


def _frame(event: str, data: bytes, index: int | None = None) -> bytes:
    if index is None:
        return b"event: %s\ndata: %s\n\n" % (event.encode(), data)
    return b"event: %s\nid: %d\ndata: %s\n\n" % (event.encode(), index, data)


class Subscriber:
    """``acl`` keeps the changes the reader's token may read; ``match`` is its ``?filter``.
    ``wake`` is called whenever there is something new to ``take``."""

    def __init__(
        self,
        topic: Topic,
        *,
        acl: Test | None = None,
        match: Test | None = None,
        limit: int = LIMIT,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.topic = topic
        self.acl = acl
        self.match = match
        self.limit = limit
        self.wake = wake
        self.recheck: Callable[[], bool | None] | None = None
        """Set by the adapter while ACLs are on: called after any ACL change, it updates
        ``acl`` and answers False once the token is gone, True when what it may read may
        have changed, None when it certainly has not."""
        self.cut = False
        """Fell more than ``limit`` behind: the connection should be dropped."""
        self.closed = False
        self._pending: deque[_Snapshot | _Changes | bytes] = deque()
        self._cost = 0
        self._shown: set[Hashable] = set()
        self._authoritative = True
        """Whether ``_shown`` is all the reader holds: false after a resume, whose reader
        may hold rows this connection never sent."""

    # -- fed by the adapter and the hub ------------------------------------------------

    def start(self, idx: Indexes, resume: int | None = None) -> None:
        """Queue a snapshot, or with ``resume`` the changes after that index when the topic
        still has them all (else a new snapshot), and start following the topic."""
        self.topic.listeners.add(self)
        if resume is None:
            self._pending.append(_Snapshot(self.topic.snapshot(idx), self.topic.as_of(idx), new=False))
            return
        missed = self.topic.since(resume) if resume <= idx.revision else None
        if missed is None or sum(len(c.data) for c in missed) > self.limit:
            self._pending.append(_Snapshot(self.topic.snapshot(idx), self.topic.as_of(idx), new=True))
            return
        self._authoritative = False
        start = 0
        for i in range(1, len(missed) + 1):
            if i == len(missed) or missed[i].index != missed[start].index:
                self._pending.append(_Changes(missed[start:i]))
                start = i

    def publish(self, changes: Sequence[Change]) -> None:
        """One revision's changes to the topic."""
        if self.closed:
            return
        item = _Changes(changes)
        self._cost += item.cost
        if self._cost > self.limit:
            self.cut = True
            self.close()
        else:
            self._pending.append(item)
        self.wake()

    def resnapshot(self, idx: Indexes) -> None:
        """Whatever was queued is void: the reader gets the topic afresh."""
        if self.closed:
            return
        self._pending.clear()
        self._cost = 0
        self._pending.append(_Snapshot(self.topic.snapshot(idx), self.topic.as_of(idx), new=True))
        self.wake()

    def acl_changed(self, idx: Indexes) -> None:
        """Permissions may differ now: send the topic afresh as the token now sees it, or
        end the stream once the token is gone."""
        if self.recheck is None or self.closed:
            return
        verdict = self.recheck()
        if verdict is False:
            self.close()
            self.wake()
        elif verdict:
            self.resnapshot(idx)

    def ping(self) -> None:
        """A keep-alive comment, when nothing else is waiting."""
        if not self._pending and not self.closed:
            self._pending.append(_PING)
            self.wake()

    def close(self) -> None:
        self.closed = True
        self._pending.clear()
        self._cost = 0
        self.topic.listeners.discard(self)

    # -- drained by the adapter --------------------------------------------------------

    def take(self, budget: int = CHUNK) -> bytes:
        """Up to about ``budget`` bytes of framed events; empty when nothing is waiting."""
        out: list[bytes] = []
        size = 0
        pending = self._pending
        while pending and size < budget:
            item = pending[0]
            if isinstance(item, bytes):
                pending.popleft()
                out.append(item)
                size += len(item)
            elif isinstance(item, _Changes):
                pending.popleft()
                self._cost -= item.cost
                framed = self._changes(item.changes)
                out.append(framed)
                size += len(framed)
            else:
                size += self._snapshot(item, out, budget - size)
                if item.pos >= len(item.rows):
                    pending.popleft()
        return b"".join(out)

    def _snapshot(self, snap: _Snapshot, out: list[bytes], budget: int) -> int:
        size = 0
        if snap.pos == 0:
            self._shown.clear()
            self._authoritative = True
            if snap.new:
                out.append(_frame("new-snapshot", b'{"Index":%d}' % snap.index))
        rows = snap.rows
        while snap.pos < len(rows) and size < budget:
            change = rows[snap.pos]
            snap.pos += 1
            if self._visible(change):
                framed = _frame(UPSERT, change.data)
                out.append(framed)
                size += len(framed)
        if snap.pos >= len(snap.rows):
            out.append(_frame("end-of-snapshot", b'{"Index":%d}' % snap.index, snap.index))
        return size

    def _visible(self, change: Change) -> bool:
        if self.acl is not None and not self.acl(change):
            return False
        if self.match is None:
            return True
        if self.match(change):
            self._shown.add(change.key)
            return True
        return False

    def _changes(self, changes: Sequence[Change]) -> bytes:
        """One revision, the ``id`` on its last event sent, so a reader cut off part way
        through resumes before it and never loses the rest of the revision."""
        sent: list[tuple[str, bytes]] = []
        for change in changes:
            op = self._op(change)
            if op is not None:
                sent.append((op, change.data))
        if not sent:
            return b""
        index = changes[-1].index
        last = len(sent) - 1
        return b"".join(_frame(op, data, index if i == last else None) for i, (op, data) in enumerate(sent))

    def _op(self, change: Change) -> str | None:
        """What to tell this reader about a change, if anything."""
        if self.acl is not None and not self.acl(change):
            return None
        if self.match is None:
            return change.op
        key = change.key
        if change.op == UPSERT and self.match(change):
            self._shown.add(key)
            return UPSERT
        if key in self._shown or not self._authoritative:
            self._shown.discard(key)
            return DELETE
        return None
