"""The replica streams' fan-out, without sockets: who is sent which events of a revision,
in how many encodings, and what happens to a reader that stops reading."""

from __future__ import annotations

import pytest

from waypost.api.replica_feed import ReplicaFeed, ReplicaReader
from waypost.store import wire
from waypost.store.base import Event, EventType, KeyValue


def _event(key: str, revision: int, kind: EventType = EventType.PUT) -> Event:
    return Event(kind, KeyValue(key, b"v", revision, revision, 1))


def _frames(reader: ReplicaReader) -> list[tuple[int, list[list[str]]]]:
    out = wire.FrameReader().feed(reader.take())
    return [(reached, [[ev.kv.key for ev in batch] for batch in batches]) for reached, batches in out]


def _node(name: str) -> ReplicaReader:
    return ReplicaReader(["members/", "liveness/", f"catalog/nodes/{name}", f"catalog/checks/{name}/"])


def test_each_reader_gets_the_events_of_its_scope_and_nothing_else() -> None:
    feed = ReplicaFeed()
    a, b = _node("a"), _node("a-2")
    feed.add(a)
    feed.add(b)
    batch = [
        _event("catalog/nodes/a", 5),
        _event("catalog/nodes/a-2", 5),
        _event("catalog/checks/a/web", 5),
        _event("catalog/checks/a-2/web", 5),
        _event("kv/members/x", 5),
    ]
    feed.publish(5, batch)
    assert _frames(a) == [(5, [["catalog/nodes/a", "catalog/checks/a/web"]])]
    assert _frames(b) == [(5, [["catalog/nodes/a-2", "catalog/checks/a-2/web"]])]
    for key in ("catalog/nodes/a", "catalog/checks/a/web", "members/a"):
        assert wire.in_scope(key, a.scope)
    assert not wire.in_scope("catalog/nodes/a-2", a.scope)


def test_readers_sent_the_same_events_share_one_encoding() -> None:
    feed = ReplicaFeed()
    readers = [_node(f"n{i}") for i in range(100)]
    for reader in readers:
        feed.add(reader)
    feed.publish(7, [_event("members/n3", 7), _event("liveness/n3", 7, EventType.DELETE)])
    frames = [r.take() for r in readers]
    assert len({id(f) for f in frames}) == 1
    assert wire.FrameReader().feed(frames[0])[0][0] == 7


def test_a_revision_outside_every_scope_is_sent_to_nobody() -> None:
    feed = ReplicaFeed()
    reader = _node("a")
    woken = []
    reader.wake = lambda: woken.append(1)
    feed.add(reader)
    feed.publish(9, [_event("catalog/checks/b/web", 9)])
    assert reader.take() == b""
    assert woken == []
    assert feed.revision == 9


def test_a_tick_brings_only_the_quiet_readers_to_the_revision_with_one_shared_frame() -> None:
    feed = ReplicaFeed()
    quiet, busy, other = _node("a"), _node("b"), _node("c")
    for reader in (quiet, busy, other):
        feed.add(reader)
    feed.publish(4, [_event("catalog/nodes/b", 4)])
    feed.publish(6, [_event("catalog/nodes/x", 6)])
    busy.take()
    feed.tick()
    assert busy.take() == b""
    progress = quiet.take()
    assert progress is other.take()
    assert wire.FrameReader().feed(progress) == [(6, [])]
    feed.tick()
    assert _frames(busy) == [(6, [])]


def test_an_event_in_two_entries_of_a_scope_is_sent_once() -> None:
    feed = ReplicaFeed()
    reader = ReplicaReader(["catalog/", "catalog/nodes/", "catalog/nodes/a"])
    feed.add(reader)
    feed.publish(3, [_event("catalog/nodes/a", 3)])
    assert _frames(reader) == [(3, [["catalog/nodes/a"]])]


def test_a_reader_that_stops_reading_is_cut_off_at_its_limit() -> None:
    feed = ReplicaFeed()
    reader = ReplicaReader(["members/"], limit=2_000)
    feed.add(reader)
    for revision in range(1, 100):
        feed.publish(revision, [_event(f"members/n{revision}", revision)])
        if reader.cut:
            break
    assert reader.cut
    assert reader.closed
    assert revision < 99
    assert reader.take() == b""


def test_removed_and_closed_readers_are_forgotten() -> None:
    feed = ReplicaFeed()
    a, b = _node("a"), _node("b")
    feed.add(a)
    feed.add(b)
    feed.remove(a)
    assert len(feed) == 1
    feed.publish(2, [_event("members/a", 2)])
    assert a.take() == b""
    woken = []
    b.wake = lambda: woken.append(1)
    feed.close_all()
    assert b.closed
    assert woken == [1]
    assert len(feed) == 0
    feed.publish(3, [_event("members/a", 3)])
    assert b.take() == b""


def test_frames_are_read_back_however_the_stream_cuts_them() -> None:
    data = b"".join(wire.encode_frame(r, [[_event(f"k{r}", r)]]) for r in range(1, 6))
    reader = wire.FrameReader()
    got = []
    for i in range(0, len(data), 7):
        got += reader.feed(data[i : i + 7])
    keys = [(reached, batches[0][0].kv.key) for reached, batches in got]
    assert keys == [(r, f"k{r}") for r in range(1, 6)]


def test_a_stream_that_is_not_frames_is_refused() -> None:
    with pytest.raises(ValueError, match="bytes"):
        wire.FrameReader().feed(b"\xff\xff\xff\xff")
    with pytest.raises(ValueError, match="malformed"):
        wire.FrameReader().feed(b"\x00\x00\x00\x02\xc1\xc1")


def test_a_reader_ahead_of_the_server_is_not_sent_what_it_already_holds() -> None:
    feed = ReplicaFeed()
    reader = ReplicaReader(["members/"], start=11)
    feed.add(reader)
    feed.publish(10, [_event("members/a", 10)])
    assert reader.take() == b""
    feed.publish(11, [_event("members/b", 11)])
    assert _frames(reader) == [(11, [["members/b"]])]
