"""What every view a client agent keeps from a server's delta stream does with its events,
with no I/O, so the rules are tested without a server (``agent.views`` feeds them).

- A snapshot (the first, or one after ``new-snapshot``) is gathered aside and replaces the
  rows only at its ``end-of-snapshot``: readers never see half of one.
- The events of one write come together and only the last carries the ``id``; they are
  applied together at that last one, so an answer is always as of a whole write.
- ``index`` is the id of the last write applied: an answer holds every change up to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from waypost.stream.sse import StreamEvent

__all__ = ["KEPT", "BadEvent", "StreamView"]

KEPT = 64
"""Distinct reads (parameters) whose result a view keeps until its next change."""

R = TypeVar("R")
T = TypeVar("T")


class BadEvent(ValueError):
    """An event that is not a row of the view: the server and this agent disagree on the
    protocol, and the view must be read again from a snapshot."""


class StreamView(Generic[R]):
    """Rows by key (in the servers' order when sorted), kept by one stream; a subclass says
    what a row is (``_row``)."""

    __slots__ = ("_batch", "_kept", "_ordered", "_rows", "_staged", "index", "name", "ready")

    def __init__(self, name: str) -> None:
        self.name = name
        self.index = 0
        self.ready = False
        """A whole snapshot has been applied: the view can answer."""
        self._rows: dict[str, R] = {}
        self._staged: dict[str, R] | None = {}
        """The snapshot being received; None between snapshots."""
        self._batch: list[StreamEvent] = []
        self._ordered: list[tuple[str, R]] | None = None
        self._kept: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def _row(self, event: StreamEvent) -> tuple[str, R]:
        """An event's data as this view's key and row; BadEvent when it is not one."""
        raise NotImplementedError

    def stream_path(self) -> str:
        """The server's ``/v1/stream`` path that keeps this view."""
        raise NotImplementedError

    def apply(self, event: StreamEvent) -> bool:
        """Whether ``event`` moved the view to a new index (its waiting readers wake)."""
        kind = event.event
        if kind == "new-snapshot":
            self.expect_snapshot()
            return False
        if kind == "end-of-snapshot":
            if self._staged is None or event.id is None:
                raise BadEvent("end-of-snapshot without a snapshot or an index")
            self._rows, self._staged, self.ready = self._staged, None, True
            return self._moved(event.id)
        if kind not in ("upsert", "delete"):
            return False  # an event this agent does not know yet: nothing it must show
        if self._staged is not None:
            if kind == "upsert":
                key, row = self._row(event)
                self._staged[key] = row
            return False
        self._batch.append(event)
        if event.id is None:
            return False
        batch, self._batch = self._batch, []
        for each in batch:
            key, row = self._row(each)
            if each.event == "upsert":
                self._rows[key] = row
            else:
                self._rows.pop(key, None)
        return self._moved(event.id)

    def cut(self) -> None:
        """The stream was cut: a write it was part way through is dropped, as the server
        sends it whole again from the index this view resumes at."""
        self._batch = []

    def expect_snapshot(self) -> None:
        """A stream opened without a resume index starts with a snapshot, unannounced."""
        self._staged, self._batch = {}, []

    def _moved(self, index: int) -> bool:
        self._ordered = None
        self._kept.clear()
        self.index = index
        return True

    def kept(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` for the read ``key`` names, once per change: every watcher a change
        wakes shares it (at most ``KEPT`` reads' results are kept)."""
        found: T | None = self._kept.get(key)
        if found is None:
            found = compute()
            if len(self._kept) >= KEPT:
                self._kept.clear()
            self._kept[key] = found
        return found

    def in_order(self) -> list[tuple[str, R]]:
        """By key, as the servers list them."""
        if self._ordered is None:
            self._ordered = sorted(self._rows.items())
        return self._ordered
